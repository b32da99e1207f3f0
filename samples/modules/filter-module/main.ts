// The filter module of the IoT Edge tutorial: reads sensor messages on input `input1` and forwards those
// whose machine temperature is above the threshold to output `output1`, marked MessageType=Alert.
// Threshold: the module twin's desired TemperatureThreshold, else env TemperatureThreshold, else 25.
import device from 'azure-iot-device';
import type { Message, ModuleClient, Twin } from 'azure-iot-device';
import mqtt from 'azure-iot-device-mqtt';

const input = 'input1';
const output = 'output1';

function log(msg: string, fields: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ time: new Date().toISOString(), module: 'filter', msg, ...fields }));
}

/** The machine temperature of a sensor reading, or undefined when the body is not one. */
export function machineTemperature(body: Buffer | string): number | undefined {
  try {
    const parsed = JSON.parse(body.toString()) as { machine?: { temperature?: unknown } };
    return typeof parsed.machine?.temperature === 'number' ? parsed.machine.temperature : undefined;
  } catch {
    return undefined;
  }
}

/** A copy of the message to send on: same body, content type and application properties, plus the alert mark. */
function alertOf(message: Message): Message {
  const alert = new device.Message(message.getBytes());
  alert.contentType = message.contentType ?? 'application/json';
  alert.contentEncoding = message.contentEncoding ?? 'utf-8';
  for (let i = 0; i < message.properties.count(); i++) {
    const { key, value } = message.properties.getItem(i);
    // The MQTT transport hands system properties it does not map ($.on, $.cdid, $.cmid, …) over as application
    // properties; copied, `$.on` would name the sensor's output instead of ours.
    if (!key.startsWith('$.')) alert.properties.add(key, value);
  }
  alert.properties.add('MessageType', 'Alert');
  return alert;
}

/** Follows the twin's desired TemperatureThreshold; a hub without twins leaves the env value in force. */
async function followTwin(client: ModuleClient, setThreshold: (t: number) => void): Promise<void> {
  try {
    const twin: Twin = await Promise.race([
      client.getTwin(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no twin within 15 s')), 15_000)),
    ]);
    const apply = (desired: { TemperatureThreshold?: unknown }) => {
      if (typeof desired.TemperatureThreshold === 'number') setThreshold(desired.TemperatureThreshold);
    };
    apply(twin.properties.desired as { TemperatureThreshold?: unknown });
    twin.on('properties.desired', apply);
  } catch (error) {
    log('twin unavailable; keeping the threshold from the environment', { error: error instanceof Error ? error.message : String(error) });
  }
}

async function main(): Promise<void> {
  let threshold = Number(process.env.TemperatureThreshold ?? '25');
  let received = 0;
  let forwarded = 0;
  const client: ModuleClient = await device.ModuleClient.fromEnvironment(mqtt.Mqtt);
  client.on('error', (error: Error) => log('client error', { error: error.message }));
  await client.open();
  log('connected', { input, output, threshold });

  client.on('inputMessage', (inputName: string, message: Message) => {
    void handle(inputName, message);
  });
  const handle = async (inputName: string, message: Message) => {
    received++;
    const temperature = machineTemperature(message.getBytes());
    log('received', { input: inputName, temperature, received });
    try {
      if (inputName === input && temperature !== undefined && temperature > threshold) {
        await client.sendOutputEvent(output, alertOf(message));
        forwarded++;
        log('forwarded', { output, temperature, threshold, forwarded });
      }
      await client.complete(message);
    } catch (error) {
      log('forward failed', { output, error: error instanceof Error ? error.message : String(error) });
    }
  };

  void followTwin(client, (t) => {
    threshold = t;
    log('threshold from twin', { threshold });
  });

  const stop = async () => {
    log('stopping', { received, forwarded });
    await client.close().catch(() => undefined);
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

if (process.argv[1]?.endsWith('main.ts') || process.argv[1]?.endsWith('main.js')) {
  main().catch((error: unknown) => {
    log('fatal', { error: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  });
}
