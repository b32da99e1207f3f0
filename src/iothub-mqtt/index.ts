// IoT Hub's MQTT dialect for devices and modules, shared by the emulator (src/emulator) and the
// built-in edge hub (src/edgehub): topics, property bags, the CONNECT check, and a lean MQTT 3.1.1 server
// (server.ts, on mqtt-packet) under the broker that speaks it (broker.ts).
export * from './topics.ts';
export * from './connect.ts';
export * from './broker.ts';
