// A few hundred of the fuzz campaign's cases (npm run bench -- fuzz runs 10,000): mutated real manifests
// through validate and translate never throw, and every refusal carries a catalogue code and a pointer.
// fast-check shrinks a failure to the smallest mutation list that still breaks the pipeline.
import { describe, it } from '@jest/globals';
import fc from 'fast-check';
import { caseText, fuzzCaseArbitrary, runPipeline, seedManifests } from '../../security/fuzz-cases.ts';

const seeds = seedManifests();

describe('validate and translate under mutated real manifests', () => {
  it('never crash, and refuse only with coded errors', () => {
    fc.assert(fc.property(fuzzCaseArbitrary(seeds.length), (c) => {
      runPipeline(caseText(seeds, c), c.settings);
    }), { numRuns: 300, seed: Number(process.env.IOTEDGE_FUZZ_SEED ?? 20261203) });
  });
});
