import { describe, expect, it } from '@jest/globals';
import { signSas } from '../../../src/runtime/sas.ts';
import {
  allowedSubscriptions,
  checkConnect,
  classifyPublish,
  formatPropertyBag,
  moduleInputTopic,
  parseClientId,
  parsePropertyBag,
  topicMatches,
  twinResponseTopic,
} from '../../../src/iothub-mqtt/index.ts';

const sensor = { deviceId: 'dev1', moduleId: 'sensor' };

describe('IoT Hub MQTT topics', () => {
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

  it('writes a property bag that parses back to the same properties', () => {
    const bag = { systemProperties: { '$.mid': 'a&b', '$.ct': 'application/json' }, properties: { 'k=1': 'v/2', empty: '' } };
    expect(parsePropertyBag(formatPropertyBag(bag))).toEqual(bag);
  });

  it('classifies what a module publishes', () => {
    expect(classifyPublish(sensor, '$iothub/twin/GET/?$rid=7')).toEqual({ kind: 'twinGet', rid: '7' });
    expect(classifyPublish(sensor, '$iothub/twin/PATCH/properties/reported/?$rid=8')).toEqual({ kind: 'twinPatchReported', rid: '8' });
    expect(classifyPublish(sensor, '$iothub/twin/DELETE/?$rid=9').kind).toBe('twinUnsupported');
    expect(classifyPublish(sensor, '$iothub/methods/res/200/?$rid=a')).toEqual({ kind: 'methodResponse', rid: 'a', status: 200 });
    const out = classifyPublish(sensor, 'devices/dev1/modules/sensor/messages/events/%24.on=temperatureOutput&%24.ct=application%2Fjson/');
    expect(out).toMatchObject({ kind: 'telemetry', outputName: 'temperatureOutput', bag: { systemProperties: { '$.ct': 'application/json' } } });
    expect(classifyPublish(sensor, 'devices/dev1/modules/filter/messages/events/').kind).toBe('forbidden');
    expect(classifyPublish(sensor, 'devices/dev1/messages/events/').kind).toBe('forbidden');
  });

  it('formats the hub-to-module topics the SDK parses', () => {
    expect(twinResponseTopic(204, 'r1', 5)).toBe('$iothub/twin/res/204/?$rid=r1&$version=5');
    const input = moduleInputTopic('dev1', 'filter', 'input1', formatPropertyBag({ systemProperties: { '$.cdid': 'dev1' }, properties: { hot: 'yes' } }));
    expect(input).toBe('devices/dev1/modules/filter/inputs/input1/%24.cdid=dev1&hot=yes');
    expect(allowedSubscriptions(sensor)).toContain('devices/dev1/modules/sensor/inputs/#');
    expect(parseClientId('dev1/sensor')).toEqual(sensor);
    expect(parseClientId('a/b/c')).toBeUndefined();
  });
});

describe('the CONNECT check', () => {
  const key = Buffer.alloc(32, 7).toString('base64');
  const otherKey = Buffer.alloc(32, 8).toString('base64');
  const expiry = Math.floor(Date.now() / 1000) + 600;
  const password = (resourceUri: string, k = key) => Buffer.from(signSas({ resourceUri, key: k, expiry }));
  const username = 'hub.local/dev1/sensor/?api-version=2021-04-12&DeviceClientType=x';
  const base = { identity: sensor, username, hostNames: ['hub.local'], keysFor: () => [key] };

  it('accepts a module token signed with one of its keys and returns its expiry', () => {
    expect(checkConnect({ ...base, password: password('hub.local/devices/dev1/modules/sensor') })).toBe(expiry);
    expect(checkConnect({ ...base, password: password('hub.local/devices/dev1') })).toBe(expiry);
  });

  it('refuses another key, another identity, another host and a missing password, saying why', () => {
    expect(() => checkConnect({ ...base, password: password('hub.local/devices/dev1/modules/sensor', otherKey) })).toThrow(/signature does not match/);
    expect(() => checkConnect({ ...base, password: password('hub.local/devices/dev1/modules/filter') })).toThrow(/does not cover/);
    expect(() => checkConnect({ ...base, username: 'other/dev1/sensor/?api-version=1', password: password('hub.local/devices/dev1/modules/sensor') })).toThrow(/not this hub/);
    expect(() => checkConnect({ ...base, username: 'hub.local/dev1/filter/?api-version=1', password: password('hub.local/devices/dev1/modules/sensor') })).toThrow(/differs from the client id/);
    expect(() => checkConnect({ ...base, password: undefined })).toThrow(/no password/);
  });
});
