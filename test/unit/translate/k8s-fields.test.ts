// src/translate/generated/k8s-fields.ts is generated from @kubernetes/client-node's models; it must match them.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { render } from '../../../scripts/gen-k8s-fields.ts';

describe('generated Kubernetes field table', () => {
  it('is current (run node scripts/gen-k8s-fields.ts after upgrading @kubernetes/client-node)', () => {
    expect(readFileSync(new URL('../../../src/translate/generated/k8s-fields.ts', import.meta.url), 'utf8')).toBe(render());
  });
});
