import { describe, expect, it } from '@jest/globals';
import { TimeoutError, withDeadline } from '../../src/runtime/deadline.ts';

describe('withDeadline', () => {
  it('passes through a result that arrives in time', async () => {
    await expect(withDeadline(Promise.resolve(7), 1000, 'answer')).resolves.toBe(7);
  });
  it('names the operation when it expires', async () => {
    const never = new Promise<number>(() => undefined);
    await expect(withDeadline(never, 10, 'twin GET')).rejects.toThrow(new TimeoutError('twin GET did not finish within 10 ms'));
  });
});
