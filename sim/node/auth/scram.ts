/**
 * SCRAM-SHA-256 and SCRAM-SHA-1 (RFC 5802 / 7677) as mongod speaks them over `saslStart` / `saslContinue`: the
 * stored credentials of a user document (`credentials.SCRAM-SHA-256: {iterationCount, salt, storedKey, serverKey}`)
 * and the server side of one conversation. mongod's defaults: 15000 iterations and a 28-byte salt for SHA-256,
 * 10000 and 16 bytes for SHA-1 (whose password is `md5("user:mongo:pwd")` in hex, as the driver digests it).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { CommandError, ErrorCodes } from '../../wire/index.ts';

export type Mechanism = 'SCRAM-SHA-1' | 'SCRAM-SHA-256';
export const MECHANISMS: readonly Mechanism[] = ['SCRAM-SHA-1', 'SCRAM-SHA-256'];

export interface ScramCredential {
  iterationCount: number;
  salt: string;
  storedKey: string;
  serverKey: string;
}

interface Algo {
  hash: 'sha1' | 'sha256';
  length: number;
  iterations: number;
  saltLength: number;
}

const ALGOS: Record<Mechanism, Algo> = {
  'SCRAM-SHA-1': { hash: 'sha1', length: 20, iterations: 10_000, saltLength: 16 },
  'SCRAM-SHA-256': { hash: 'sha256', length: 32, iterations: 15_000, saltLength: 28 },
};

/** mongod's reply to any failed SCRAM step (it never says whether the user exists). */
export function authenticationFailed(): CommandError {
  return new CommandError(ErrorCodes.AuthenticationFailed, 'Authentication failed.');
}

/**
 * SASLprep, reduced to what matters for the simulator's passwords: NFKC normalization (RFC 4013's mapping of
 * non-ASCII spaces and of "commonly mapped to nothing" characters is left out; ASCII passwords are unaffected).
 */
function saslprep(password: string): string {
  return password.normalize('NFKC');
}

/** The password as the mechanism hashes it. */
function preparePassword(mechanism: Mechanism, user: string, password: string): string {
  return mechanism === 'SCRAM-SHA-1' ? createHash('md5').update(`${user}:mongo:${password}`, 'utf8').digest('hex') : saslprep(password);
}

const hmac = (algo: Algo, key: Buffer, text: string | Buffer) => createHmac(algo.hash, key).update(text).digest();
const digest = (algo: Algo, data: Buffer) => createHash(algo.hash).update(data).digest();

/** Builds a stored credential for a new user (createUser). */
export function makeCredential(mechanism: Mechanism, user: string, password: string): ScramCredential {
  const algo = ALGOS[mechanism];
  const salt = randomBytes(algo.saltLength);
  const salted = pbkdf2Sync(preparePassword(mechanism, user, password), salt, algo.iterations, algo.length, algo.hash);
  return {
    iterationCount: algo.iterations,
    salt: salt.toString('base64'),
    storedKey: digest(algo, hmac(algo, salted, 'Client Key')).toString('base64'),
    serverKey: hmac(algo, salted, 'Server Key').toString('base64'),
  };
}

/** `n=user` and the other attributes of a SCRAM message. */
function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0]!, part.slice(2));
  }
  return out;
}

function decodeSaslName(name: string): string {
  return name.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

/** The user named in a client-first message, or a protocol error. */
export function parseClientFirst(payload: Buffer): { user: string; nonce: string; bare: string } {
  const text = payload.toString('utf8');
  // gs2 header: "n,," (no channel binding) or "y,,"; "p=" (binding required) is not supported, as in mongod.
  const m = /^([ny]),[^,]*,(.*)$/s.exec(text);
  if (!m) throw new CommandError(ErrorCodes.BadValue, 'Incorrect number of arguments for first SCRAM client message, got 1 expected at least 3');
  const bare = m[2]!;
  const attrs = attributes(bare);
  const user = attrs.get('n');
  const nonce = attrs.get('r');
  if (user === undefined || nonce === undefined || nonce === '') {
    throw new CommandError(ErrorCodes.BadValue, `Invalid SCRAM client first message: ${bare}`);
  }
  return { user: decodeSaslName(user), nonce, bare };
}

/** One SCRAM conversation, server side. */
export class ScramConversation {
  private step = 1;
  private readonly algo: Algo;
  private readonly serverFirst: string;
  private readonly nonce: string;
  /** Set once the proof checked out. */
  authenticated = false;

  /**
   * @param user the user document's name and database (the conversation authenticates this user)
   * @param credential the user's stored credential for the mechanism
   */
  constructor(
    readonly mechanism: Mechanism,
    readonly user: { user: string; db: string },
    private readonly credential: ScramCredential,
    private readonly clientFirstBare: string,
    clientNonce: string,
    readonly skipEmptyExchange: boolean,
  ) {
    this.algo = ALGOS[mechanism];
    this.nonce = clientNonce + randomBytes(24).toString('base64');
    this.serverFirst = `r=${this.nonce},s=${credential.salt},i=${credential.iterationCount}`;
  }

  /** The server-first message (reply to saslStart). */
  first(): Buffer {
    return Buffer.from(this.serverFirst, 'utf8');
  }

  /**
   * Handles one saslContinue payload; returns the reply payload and whether the conversation is done.
   * A wrong proof, nonce or channel binding: 18 AuthenticationFailed.
   */
  next(payload: Buffer): { payload: Buffer; done: boolean } {
    if (this.step === 2) {
      // The client's empty final message after v=... (when it did not ask to skip it).
      this.step = 3;
      return { payload: Buffer.alloc(0), done: true };
    }
    if (this.step !== 1) throw authenticationFailed();
    this.step = 2;
    const text = payload.toString('utf8');
    const proofAt = text.lastIndexOf(',p=');
    if (proofAt < 0) throw authenticationFailed();
    const withoutProof = text.slice(0, proofAt);
    const attrs = attributes(withoutProof);
    if (attrs.get('r') !== this.nonce || (attrs.get('c') !== 'biws' && attrs.get('c') !== 'eSws')) throw authenticationFailed();
    const proof = Buffer.from(text.slice(proofAt + 3), 'base64');
    if (proof.length !== this.algo.length) throw authenticationFailed();
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const storedKey = Buffer.from(this.credential.storedKey, 'base64');
    const signature = hmac(this.algo, storedKey, authMessage);
    const clientKey = Buffer.alloc(proof.length);
    for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i]! ^ signature[i]!;
    const computed = digest(this.algo, clientKey);
    if (computed.length !== storedKey.length || !timingSafeEqual(computed, storedKey)) throw authenticationFailed();
    this.authenticated = true;
    const serverSignature = hmac(this.algo, Buffer.from(this.credential.serverKey, 'base64'), authMessage);
    const final = Buffer.from(`v=${serverSignature.toString('base64')}`, 'utf8');
    if (this.skipEmptyExchange) this.step = 3;
    return { payload: final, done: this.skipEmptyExchange };
  }
}
