// Writes MQTT packets to a stream in batches: every packet written while one pass of the event loop runs
// (a chunk's PUBACKs, a commit's deliveries) goes down corked, as one writev, so TLS encrypts the batch at
// once and no JS copy joins the buffers. Used by the server core and by the benches' raw client.
import type { Writable } from 'node:stream';
import mqttPacket from 'mqtt-packet';
import type { Packet } from 'mqtt-packet';

export class PacketWriter {
  private readonly stream: Writable;
  private pending: Buffer[] = [];
  private scheduled = false;
  /** Runs after each batch went to the stream (e.g. to check its buffered bytes). */
  private readonly afterFlush: (() => void) | undefined;

  constructor(stream: Writable, afterFlush?: () => void) {
    this.stream = stream;
    this.afterFlush = afterFlush;
  }

  write(packet: Packet): void {
    this.pending.push(mqttPacket.generate(packet));
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  /** Sends what is pending now (also called before a close, so the last packets go out). */
  flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0 || this.stream.destroyed) return;
    this.stream.cork();
    for (const data of batch) this.stream.write(data);
    this.stream.uncork();
    this.afterFlush?.();
  }
}
