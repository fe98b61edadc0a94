/**
 * A node's `topologyVersion` and awaitable `hello`: the driver's streaming monitor holds a `hello` open until the
 * node's topology changes (state, config) or `maxAwaitTimeMS` passes, and mongod streams the replies (exhaust).
 */
import type { Document } from 'mongodb';
import { Long, ObjectId } from 'mongodb';
import type { ConnectionContext } from './context.ts';
import { CommandError, ErrorCodes } from './errors.ts';
import { ExhaustReply } from './handler.ts';

function toNumber(value: unknown): number {
  return Long.isLong(value) ? value.toNumber() : Number(value);
}

export class TopologyVersion {
  private readonly processId = new ObjectId();
  private counter = 0;
  private readonly waiters = new Set<() => void>();

  /** The value `hello` reports. */
  get current(): { processId: ObjectId; counter: Long } {
    return { processId: this.processId, counter: Long.fromNumber(this.counter) };
  }

  /** Bumps the version and wakes every held `hello`. */
  change(): void {
    this.counter++;
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }

  private isCurrent(version: { processId?: unknown; counter?: unknown }): boolean {
    if (!(version.processId instanceof ObjectId) || !version.processId.equals(this.processId)) return false;
    return version.counter !== undefined && toNumber(version.counter) === this.counter;
  }

  private waitForChange(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.waiters.add(done);
    });
  }

  /**
   * Answers `hello`: when the client already knows the current version and asks to await, waits; then returns the
   * reply, streamed (ExhaustReply) for awaitable requests as mongod does. `build` makes the reply body.
   */
  async hello(command: Document, ctx: ConnectionContext, build: () => Document): Promise<Document | ExhaustReply> {
    const maxAwaitTimeMS: unknown = command.maxAwaitTimeMS;
    const clientVersion = command.topologyVersion as { processId?: unknown; counter?: unknown } | undefined;
    const awaitable = clientVersion !== undefined && maxAwaitTimeMS !== undefined;
    if (awaitable) {
      if (typeof maxAwaitTimeMS !== 'number' && !Long.isLong(maxAwaitTimeMS)) {
        throw new CommandError(ErrorCodes.TypeMismatch, "BSON field 'maxAwaitTimeMS' is the wrong type");
      }
      if (this.isCurrent(clientVersion)) await this.waitForChange(toNumber(maxAwaitTimeMS), ctx.signal);
    }
    const reply = { ...build(), topologyVersion: this.current };
    if (!awaitable) return reply;
    const next = { ...command, topologyVersion: reply.topologyVersion };
    return new ExhaustReply(reply, () => this.hello(next, ctx, build));
  }
}
