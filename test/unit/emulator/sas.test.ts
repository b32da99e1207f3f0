import { createHmac } from 'node:crypto';
import { describe, it, expect } from '@jest/globals';
import common from 'azure-iot-common';
import {
  encodeUriComponentStrict,
  generateSymmetricKey,
  parseSas,
  resourceCovers,
  SasError,
  signSas,
  verifySas,
} from '../../../src/runtime/sas.ts';

const key = Buffer.alloc(32, 7).toString('base64');
const otherKey = Buffer.alloc(32, 8).toString('base64');
const now = 1_700_000_000;

function reasonOf(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    return error instanceof SasError ? error.reason : `not a SasError: ${String(error)}`;
  }
}

describe('SAS tokens (src/runtime/sas.ts)', () => {
  it('signs exactly as the Azure SDK does (same token for the same inputs)', () => {
    const resource = '127.0.0.2/devices/edge1/modules/$edgeAgent';
    const ours = signSas({ resourceUri: resource, key, expiry: now + 3600 });
    const sdk = common.SharedAccessSignature.create(encodeUriComponentStrict(resource), undefined as unknown as string, key, now + 3600).toString();
    expect(ours).toBe(sdk);
  });

  it('verifies a token the SDK made for a policy, using the raw sr as signed', () => {
    const token = common.SharedAccessSignature.create('127.0.0.2', 'iothubowner', key, now + 60).toString();
    const parsed = parseSas(token);
    expect(parsed.keyName).toBe('iothubowner');
    expect(parsed.resource).toBe('127.0.0.2');
    expect(() => verifySas(parsed, [otherKey, key], now)).not.toThrow();
  });

  it('accepts uppercase and lowercase percent-escapes alike, since the HMAC covers the sr as sent', () => {
    for (const sr of ['h%2Fdevices%2Fd1', 'h%2fdevices%2fd1']) {
      const sig = encodeURIComponent(createHmac('sha256', Buffer.from(key, 'base64')).update(`${sr}\n${now + 10}`).digest('base64'));
      const parsed = parseSas(`SharedAccessSignature sr=${sr}&sig=${sig}&se=${now + 10}`);
      expect(parsed.resource).toBe('h/devices/d1');
      expect(() => verifySas(parsed, [key], now)).not.toThrow();
    }
  });

  it('refuses a wrong key, an expired token and malformed tokens, with the reason', () => {
    const token = signSas({ resourceUri: 'h/devices/d1', key, expiry: now + 10 });
    expect(reasonOf(() => verifySas(parseSas(token), [otherKey], now))).toBe('signature');
    expect(reasonOf(() => verifySas(parseSas(token), [key], now + 10))).toBe('expired');
    expect(reasonOf(() => parseSas('Bearer abc'))).toBe('malformed');
    expect(reasonOf(() => parseSas('SharedAccessSignature sr=h&se=1'))).toBe('malformed');
    expect(reasonOf(() => parseSas('SharedAccessSignature sr=h&sig=x&se=soon'))).toBe('malformed');
    expect(reasonOf(() => parseSas('SharedAccessSignature sr=h&sig=x&sig=y&se=1'))).toBe('malformed');
  });

  it('a tampered sr no longer verifies', () => {
    const token = signSas({ resourceUri: 'h/devices/d1', key, expiry: now + 10 });
    const tampered = token.replace('d1', 'd2');
    expect(reasonOf(() => verifySas(parseSas(tampered), [key], now))).toBe('signature');
  });

  it('matches resources by whole segments, host case-insensitively', () => {
    expect(resourceCovers('h', 'h/devices/d1/modules/m')).toBe(true);
    expect(resourceCovers('H/devices/d1', 'h/devices/d1/modules/m')).toBe(true);
    expect(resourceCovers('h/devices/d1/modules/m', 'h/devices/d1/modules/m')).toBe(true);
    expect(resourceCovers('h/devices/d', 'h/devices/d1')).toBe(false);
    expect(resourceCovers('h/devices/D1', 'h/devices/d1')).toBe(false);
    expect(resourceCovers('h/devices/d1/modules/m', 'h/devices/d1')).toBe(false);
  });

  it('generates 32-byte base64 keys', () => {
    const k = generateSymmetricKey();
    expect(Buffer.from(k, 'base64')).toHaveLength(32);
    expect(k).not.toBe(generateSymmetricKey());
  });
});

