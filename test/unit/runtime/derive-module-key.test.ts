import { describe, expect, it } from '@jest/globals';
import { deriveModuleKey } from '../../../src/runtime/sas.ts';

// Expected values computed outside Node with
// `printf 'dev1/<module>' | openssl dgst -sha256 -mac HMAC -macopt hexkey:<root key hex> -binary | base64`.
const rootKey = 'MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=';

describe('deriveModuleKey', () => {
  it('is HMAC-SHA256 of "<deviceId>/<moduleId>" under the decoded root key, as aziot-identityd derives it', () => {
    expect(deriveModuleKey(rootKey, 'dev1', '$edgeHub')).toBe('wTNQd0EWTVNbUVxkk3P3nlfpe7z7VmzqclK414QwfvM=');
    expect(deriveModuleKey(rootKey, 'dev1', 'filter')).toBe('0aDfc5IuYL8s4rBCFbg7l1+XNRxCcn6gW2633AvQnzc=');
  });

  it('gives each device and module its own key', () => {
    const keys = new Set([
      deriveModuleKey(rootKey, 'dev1', 'a'), deriveModuleKey(rootKey, 'dev1', 'b'), deriveModuleKey(rootKey, 'dev2', 'a'),
      // The separator matters: "dev1/a" and "dev1a/" must not collide with a naive concatenation.
      deriveModuleKey(rootKey, 'dev1a', ''),
    ]);
    expect(keys.size).toBe(4);
  });

  it('refuses an empty root key rather than signing with nothing', () => {
    expect(() => deriveModuleKey('', 'dev1', 'a')).toThrow(/root key/);
  });
});

