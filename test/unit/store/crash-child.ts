// Run by store-crash.test.ts as a separate process: enqueues numbered messages without pause,
// several enqueues in flight at once, and prints each number once its enqueue has resolved.
// The parent SIGKILLs it mid-stream and checks that every printed number is in the store.
import { MessageStore } from '../../../src/store/index.ts';

const dir = process.argv[2] as string;
const store = await MessageStore.open(dir, { maxBytes: 1024 * 1024 * 1024 });
let next = 0;

async function producer(): Promise<never> {
  for (;;) {
    const ids = [next++, next++, next++];
    await store.enqueue(ids.map((id) => ({ endpointId: id % 2 === 0 ? 'even' : 'odd', priority: id % 3, expiresAtMs: undefined, message: Buffer.from(`message-${id}`) })));
    process.stdout.write(`${ids.join('\n')}\n`);
  }
}

await Promise.all([producer(), producer(), producer(), producer()]);
