/**
 * A Node process that starts a dev server through startDevServer, prints `{"address": ...}` on stdout and then
 * waits to be killed. dev-server-orphan.test.ts SIGKILLs it and checks that the server goes with it.
 *
 *   node --import tsx test/helpers/dev-server-child.ts <logDir>
 */
import { startDevServer } from '../../scripts/temporal/dev-server.ts';
import { createLogger } from '../../lib/logger.ts';

const logDir = process.argv[2];
if (!logDir) throw new Error('usage: dev-server-child.ts <logDir>');
const server = await startDevServer({ logDir, headless: true }, createLogger('warn'));
process.stdout.write(JSON.stringify({ address: server.address, logFile: server.logFile }) + '\n');
setInterval(() => undefined, 60_000); // stay up until killed
