/** What every command implementation receives. */
import type { Document } from 'mongodb';
import type { ConnectionContext, ExhaustReply } from '../../wire/index.ts';
import type { SimNode } from '../node.ts';

export interface CommandContext {
  node: SimNode;
  db: string;
  command: Document;
  conn: ConnectionContext;
  /** The command name as sent. */
  name: string;
}

export type CommandImpl = (ctx: CommandContext) => Document | ExhaustReply | Promise<Document | ExhaustReply>;
