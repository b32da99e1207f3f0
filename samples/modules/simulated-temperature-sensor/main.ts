// A simulated temperature sensor, message-compatible with Microsoft's SimulatedTemperatureSensor module:
// every SendInterval seconds it sends {machine: {temperature, pressure}, ambient: {temperature, humidity},
// timeCreated} on output `temperatureOutput`, with the machine temperature also as application property
// `temperature`, so that both `WHERE $body.machine.temperature > 25` and `WHERE AS_NUMBER(temperature) > 25` route it.
// It connects like any IoT Edge module: ModuleClient.fromEnvironment() over MQTT.
import device from 'azure-iot-device';
import type { DeviceMethodRequest, DeviceMethodResponse, ModuleClient } from 'azure-iot-device';
import mqtt from 'azure-iot-device-mqtt';

const output = 'temperatureOutput';

/** One JSON line per event on stdout: `kubectl logs` is how people and tests see what the module did. */
function log(msg: string, fields: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ time: new Date().toISOString(), module: 'SimulatedTemperatureSensor', msg, ...fields }));
}

/** SendInterval in seconds, or Microsoft's MessageDelay as hh:mm:ss; 5 s by default. */
export function sendIntervalMs(env: NodeJS.ProcessEnv): number {
  if (env.SendInterval) return Number(env.SendInterval) * 1000;
  const delay = /^(\d+):(\d+):(\d+(?:\.\d+)?)$/.exec(env.MessageDelay ?? '');
  if (delay) return ((Number(delay[1]) * 60 + Number(delay[2])) * 60 + Number(delay[3])) * 1000;
  return 5000;
}

export interface Reading {
  machine: { temperature: number; pressure: number };
  ambient: { temperature: number; humidity: number };
  timeCreated: string;
}

/**
 * The machine heats from 20 °C to 35 °C in 20 steps and starts over, with a little noise, so about half of
 * the readings are above the tutorial's 25 °C threshold. Pressure follows temperature as in Microsoft's module.
 */
export function reading(step: number, noise: () => number = Math.random): Reading {
  const machineTemperature = Math.round((20 + (step % 20) * 0.75 + (noise() - 0.5) * 0.5) * 100) / 100;
  return {
    machine: { temperature: machineTemperature, pressure: Math.round((1 + (machineTemperature - 20) * 0.125) * 100) / 100 },
    ambient: { temperature: Math.round((21 + (noise() - 0.5)) * 100) / 100, humidity: 24 + Math.floor(noise() * 3) },
    timeCreated: new Date().toISOString(),
  };
}

function toMessage(body: Reading, sequenceNumber: number, batchId: string): InstanceType<typeof device.Message> {
  const message = new device.Message(JSON.stringify(body));
  message.contentType = 'application/json';
  message.contentEncoding = 'utf-8';
  message.properties.add('sequenceNumber', String(sequenceNumber));
  message.properties.add('batchId', batchId);
  message.properties.add('temperature', String(body.machine.temperature));
  return message;
}

async function main(): Promise<void> {
  const messageCount = Number(process.env.MessageCount ?? '500');
  const intervalMs = sendIntervalMs(process.env);
  const batchId = crypto.randomUUID();
  const client: ModuleClient = await device.ModuleClient.fromEnvironment(mqtt.Mqtt);
  client.on('error', (error: Error) => log('client error', { error: error.message }));
  await client.open();
  log('connected', { output, messageCount, intervalMs });

  let step = 0;
  // Like Microsoft's module: the `reset` direct method starts the temperature ramp over.
  client.onMethod('reset', (_request?: DeviceMethodRequest, response?: DeviceMethodResponse) => {
    step = 0;
    log('reset by direct method');
    response?.send(200, { reset: true }).catch((error: Error) => log('method response failed', { error: error.message }));
  });

  let sent = 0;
  const stop = async () => {
    log('stopping', { sent });
    await client.close().catch(() => undefined);
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());

  while (messageCount <= 0 || sent < messageCount) {
    const body = reading(step++);
    try {
      await client.sendOutputEvent(output, toMessage(body, sent + 1, batchId));
      sent++;
      log('sent', { output, sequenceNumber: sent, temperature: body.machine.temperature });
    } catch (error) {
      log('send failed', { output, error: error instanceof Error ? error.message : String(error) });
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  log('done sending', { sent });
}

if (process.argv[1]?.endsWith('main.ts') || process.argv[1]?.endsWith('main.js')) {
  main().catch((error: unknown) => {
    log('fatal', { error: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  });
}
