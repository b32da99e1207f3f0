import { describe, it, expect } from '@jest/globals';
import { parsePropertyBag, topicMatches } from '../../../src/emulator/mqtt.ts';
import { FaultRules } from '../../../src/emulator/faults.ts';

describe('MQTT topic helpers', () => {
  it('matches filters with + and #', () => {
    expect(topicMatches('$iothub/methods/POST/#', '$iothub/methods/POST/ping/?$rid=1')).toBe(true);
    expect(topicMatches('$iothub/twin/res/#', '$iothub/twin/PATCH/properties/desired/?$version=2')).toBe(false);
    expect(topicMatches('devices/+/messages/events/', 'devices/d1/messages/events/')).toBe(true);
    expect(topicMatches('devices/+/messages', 'devices/d1/messages/events')).toBe(false);
  });

  it('splits a telemetry property bag into system and application properties, URL-decoded', () => {
    const bag = '%24.mid=m1&%24.ct=application%2Fjson&%24.on=out1&temp%20unit=%C2%B0C&flag=';
    expect(parsePropertyBag(bag)).toEqual({
      systemProperties: { '$.mid': 'm1', '$.ct': 'application/json', '$.on': 'out1' },
      properties: { 'temp unit': '°C', flag: '' },
    });
  });
});

describe('fault rules', () => {
  it('apply to the next `count` matching events only, per identity filter', () => {
    const rules = new FaultRules<true>();
    rules.add(true, { count: 2 }, { deviceId: 'd1' });
    expect(rules.take({ deviceId: 'd2' })).toBeUndefined();
    expect(rules.take({ deviceId: 'd1', moduleId: 'm' })).toBe(true);
    expect(rules.take({ deviceId: 'd1' })).toBe(true);
    expect(rules.take({ deviceId: 'd1' })).toBeUndefined();
  });

  it('refuse a non-positive count', () => {
    expect(() => new FaultRules<true>().add(true, { count: 0 })).toThrow(RangeError);
  });
});
