// The sample modules' pure parts: the sensor's readings keep Microsoft's SimulatedTemperatureSensor body,
// and the filter reads the machine temperature out of it.
import { describe, expect, it } from '@jest/globals';
import { reading, sendIntervalMs } from '../../../samples/modules/simulated-temperature-sensor/main.ts';
import { machineTemperature } from '../../../samples/modules/filter-module/main.ts';

describe('simulated temperature sensor', () => {
  it('sends the body shape of Microsoft\'s module: machine temperature and pressure, ambient temperature and humidity, timeCreated', () => {
    const body = reading(3, () => 0.5);
    expect(Object.keys(body).sort()).toEqual(['ambient', 'machine', 'timeCreated']);
    expect(body.machine).toEqual({ temperature: expect.any(Number), pressure: expect.any(Number) });
    expect(body.ambient).toEqual({ temperature: expect.any(Number), humidity: expect.any(Number) });
    expect(Number.isInteger(body.ambient.humidity)).toBe(true);
    expect(new Date(body.timeCreated).toISOString()).toBe(body.timeCreated);
  });

  it('ramps the machine temperature so that some readings in every 20 are above the tutorial threshold of 25 and some are not', () => {
    const temperatures = Array.from({ length: 20 }, (_, step) => reading(step).machine.temperature);
    expect(temperatures.filter((t) => t > 25).length).toBeGreaterThan(5);
    expect(temperatures.filter((t) => t <= 25).length).toBeGreaterThan(5);
  });

  it('takes SendInterval in seconds, or MessageDelay as hh:mm:ss, else 5 s', () => {
    expect(sendIntervalMs({ SendInterval: '0.5' })).toBe(500);
    expect(sendIntervalMs({ MessageDelay: '00:01:02' })).toBe(62_000);
    expect(sendIntervalMs({})).toBe(5000);
  });
});

describe('filter module', () => {
  it('reads the machine temperature of a sensor reading, and nothing from other bodies', () => {
    expect(machineTemperature(Buffer.from(JSON.stringify(reading(12, () => 0.5))))).toBe(reading(12, () => 0.5).machine.temperature);
    expect(machineTemperature('not json')).toBeUndefined();
    expect(machineTemperature('{"machine":{"temperature":"hot"}}')).toBeUndefined();
  });
});
