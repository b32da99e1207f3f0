// IoT Hub's MQTT dialect for devices and modules, shared by the emulator (src/emulator) and the
// built-in edge hub (src/edgehub): topics, property bags, the CONNECT check, and an aedes broker that speaks it.
export * from './topics.ts';
export * from './connect.ts';
export * from './broker.ts';
