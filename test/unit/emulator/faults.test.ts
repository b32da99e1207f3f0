import { describe, it, expect } from '@jest/globals';
import { FaultRules } from '../../../src/emulator/faults.ts';

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
