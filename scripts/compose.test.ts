/**
 * The wiring of docker-compose.yml (README "Back up a real cluster"), checked without Docker: an agent beside every
 * mongod with its data volume at the mongod's dbpath, real CLI verbs and options, one Temporal address, replica sets
 * and shards as the init services create them, the S3 server every cutpoint service stores into, and no password or
 * secret key in any command line or in the workers' environment.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { agentTargets } from '../cli/cmd-agent.ts';
import type { CliContext } from '../cli/context.ts';
import { buildProgram } from '../cli/program.ts';
import { parseS3Location } from '../repository/s3-location.ts';

const root = new URL('../', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, root), 'utf8');
const COMPOSE_TEXT = read('docker-compose.yml');

interface Service {
  image?: string;
  build?: unknown;
  hostname?: string;
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string> | string[];
  env_file?: string[] | string;
  volumes?: string[];
  ports?: string[];
  network_mode?: string;
  depends_on?: unknown;
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const loadCompose = (text: string): Compose => parse(text, { merge: true }) as Compose;
const list = <T>(v: T[] | T | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const argv = (s: Service): string[] => (typeof s.command === 'string' ? s.command.split(/\s+/).filter(Boolean) : (s.command ?? []));
const env = (s: Service): Record<string, string> =>
  Array.isArray(s.environment)
    ? Object.fromEntries(s.environment.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))
    : Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)]));
const optionValue = (args: string[], name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
/** Short-syntax volume `source:target[:mode]` → its source and target. */
const mounts = (s: Service) => list(s.volumes).map((v) => ({ source: v.split(':')[0], target: v.split(':')[1] }));

const isPsmdb = (s: Service) => s.image?.startsWith('percona/percona-server-mongodb') === true;
/** mongod services: the PSMDB image with its own entrypoint, running mongod (flags only, or `mongod ...`). */
function mongods(c: Compose): Array<{ name: string; hostPort: string; replSet: string; dbpath: string; configsvr: boolean; shardsvr: boolean; args: string[] }> {
  return Object.entries(c.services)
    .filter(([, s]) => isPsmdb(s) && s.entrypoint === undefined && (argv(s)[0]?.startsWith('-') || argv(s)[0] === 'mongod'))
    .map(([name, s]) => {
      const args = argv(s);
      return {
        name,
        hostPort: `${s.hostname ?? name}:${optionValue(args, '--port') ?? ''}`,
        replSet: optionValue(args, '--replSet') ?? '',
        dbpath: optionValue(args, '--dbpath') ?? '',
        configsvr: args.includes('--configsvr'),
        shardsvr: args.includes('--shardsvr'),
        args,
      };
    });
}

const ctx: CliContext = {
  log: () => {
    throw new Error('not run');
  },
  out: () => undefined,
  setExit: () => undefined,
};

/** Parses `args` (verb first) with the real CLI program without running the verb: its options, or the problem. */
function parseVerb(args: string[]): { verb?: Command; opts: Record<string, unknown>; problem?: string } {
  const program = buildProgram(ctx);
  const verb = program.commands.find((c) => c.name() === args[0]);
  if (!verb) return { opts: {}, problem: `"${args[0]}" is not a cutpoint verb` };
  const { operands, unknown } = verb.parseOptions(args.slice(1));
  const opts = verb.opts();
  const missing = verb.options.filter((o) => o.mandatory && opts[o.attributeName()] === undefined).map((o) => o.long);
  if (unknown.length > 0) return { verb, opts, problem: `${args[0]}: unknown option(s) ${unknown.join(' ')}` };
  if (missing.length > 0) return { verb, opts, problem: `${args[0]}: missing ${missing.join(' ')}` };
  if (operands.length !== verb.registeredArguments.filter((a) => a.required).length) {
    return { verb, opts, problem: `${args[0]}: operands ${JSON.stringify(operands)}` };
  }
  return { verb, opts };
}

/** The S3 service: versitygw's posix backend, its endpoint inside the compose network, and the volume of its root. */
function s3Server(c: Compose): { name: string; endpoint: string; root: string; volume?: string } | undefined {
  const found = Object.entries(c.services).find(([, s]) => s.image?.startsWith('versity/versitygw') === true && argv(s).includes('posix'));
  if (!found) return undefined;
  const [name, s] = found;
  const args = argv(s);
  const root = args[args.indexOf('posix') + 1] ?? '';
  const port = (optionValue(args, '--port') ?? ':7070').split(':').at(-1);
  return { name, endpoint: `http://${s.hostname ?? name}:${port}`, root, volume: mounts(s).find((m) => m.target === root)?.source };
}

/** Every problem of the compose file's wiring, one line each (empty: all is wired). */
function wiringProblems(c: Compose): string[] {
  const problems: string[] = [];
  const services = c.services;
  const declaredVolumes = new Set(Object.keys(c.volumes ?? {}));
  const ms = mongods(c);
  if (ms.length === 0) problems.push('no mongod service');

  // --- Temporal: one frontend address, on a port the temporal service listens on.
  const temporal = services.temporal;
  const frontendPorts = new Set(list(temporal?.ports).map((p) => String(p).split(':').at(-1)));
  const temporalAddress = `temporal:${[...frontendPorts][0] ?? '7233'}`;
  if (!temporal) problems.push('no temporal service');
  if (!frontendPorts.has('7233')) problems.push(`temporal publishes ${[...frontendPorts].join(',')}, not its frontend 7233`);
  for (const [name, s] of Object.entries(services)) {
    const address = env(s).TEMPORAL_ADDRESS;
    if (address !== undefined && address !== temporalAddress) problems.push(`${name}: TEMPORAL_ADDRESS ${address}, not ${temporalAddress}`);
  }
  if (env(services['temporal-ui'] ?? {}).TEMPORAL_ADDRESS !== temporalAddress) problems.push('temporal-ui does not point at temporal');

  // --- cutpoint services: a real verb with real options, Temporal and credentials from the environment.
  const cutpoint = Object.entries(services).filter(([, s]) => s.build !== undefined);
  const agents: Array<{ name: string; targets: Array<{ mongod: string; dbpath?: string }> }> = [];
  for (const [name, s] of cutpoint) {
    const args = argv(s);
    const { opts, problem } = parseVerb(args);
    if (problem) {
      problems.push(`${name}: ${problem}`);
      continue;
    }
    if (env(s).TEMPORAL_ADDRESS === undefined) problems.push(`${name}: no TEMPORAL_ADDRESS`);
    if (!list(s.env_file).includes('cutpoint.env')) problems.push(`${name}: does not read cutpoint.env`);
    if (list(s.env_file).some((f) => f.includes('admin'))) problems.push(`${name}: reads the admin credentials`);
    if (args[0] === 'agent') {
      try {
        agents.push({ name, targets: agentTargets(opts.mongod as string[], opts.dbpath as string[]) });
      } catch (e) {
        problems.push(`${name}: ${(e as Error).message}`);
      }
      const mongodPath = env(s).CUTPOINT_MONGOD_PATH;
      if (!mongodPath?.startsWith('/')) problems.push(`${name}: CUTPOINT_MONGOD_PATH ${mongodPath} is not an absolute mongod path`);
    }
  }
  if (cutpoint.filter(([, s]) => argv(s)[0] === 'worker').length !== 1) problems.push('not exactly one `cutpoint worker`');

  // --- S3: one versitygw serving its posix root from a volume, with the keys of s3.env, which every cutpoint service
  // reads too (as AWS_*), and whose endpoint every cutpoint service names.
  const s3 = s3Server(c);
  if (!s3) problems.push('no S3 service (versitygw posix on a volume)');
  else {
    if (!list(services[s3.name]!.env_file).includes('s3.env')) problems.push(`${s3.name}: does not read s3.env`);
    for (const [name, s] of cutpoint) {
      if (!list(s.env_file).includes('s3.env')) problems.push(`${name}: does not read s3.env`);
      if (env(s).AWS_ENDPOINT_URL !== s3.endpoint) problems.push(`${name}: AWS_ENDPOINT_URL ${env(s).AWS_ENDPOINT_URL}, not ${s3.endpoint}`);
    }
  }

  // --- an agent beside every mongod, with the mongod's data volume at its dbpath; no agent for a missing mongod.
  for (const m of ms) {
    const mine = agents.filter((a) => a.targets.some((t) => t.mongod === m.hostPort));
    if (mine.length !== 1) {
      problems.push(`mongod ${m.name} (${m.hostPort}): ${mine.length} agents (${mine.map((a) => a.name).join(', ')}), want exactly 1`);
      continue;
    }
    const agent = mine[0]!;
    const target = agent.targets.find((t) => t.mongod === m.hostPort)!;
    if (target.dbpath !== m.dbpath) problems.push(`${agent.name}: --dbpath ${target.dbpath} for ${m.hostPort}, whose --dbpath is ${m.dbpath}`);
    const dataVolume = mounts(services[m.name]!).find((v) => v.target === m.dbpath)?.source;
    if (!dataVolume || !declaredVolumes.has(dataVolume)) problems.push(`mongod ${m.name}: no named volume at its dbpath ${m.dbpath}`);
    const agentMount = mounts(services[agent.name]!).find((v) => v.target === m.dbpath);
    if (agentMount?.source !== dataVolume) {
      problems.push(`${agent.name}: mounts ${agentMount?.source ?? 'nothing'} at ${m.dbpath}, not ${m.name}'s volume ${dataVolume}`);
    }
  }
  for (const a of agents) {
    for (const t of a.targets) if (!ms.some((m) => m.hostPort === t.mongod)) problems.push(`${a.name}: --mongod ${t.mongod} is no mongod service`);
  }

  // --- replica sets: one init service per set, creating exactly the members the mongod services are.
  const sets = new Map<string, typeof ms>();
  for (const m of ms) sets.set(m.replSet, [...(sets.get(m.replSet) ?? []), m]);
  const inits = Object.entries(services).filter(([, s]) => env(s).RS_NAME !== undefined);
  for (const [setName, members] of sets) {
    const init = inits.filter(([, s]) => env(s).RS_NAME === setName);
    if (init.length !== 1) {
      problems.push(`replica set ${setName}: ${init.length} init services`);
      continue;
    }
    const [initName, s] = init[0]!;
    const e = env(s);
    const want = members.map((m) => m.hostPort).sort();
    const got = (e.RS_MEMBERS ?? '').split(',').sort();
    if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`${initName}: initiates ${got.join(',')}, the services are ${want.join(',')}`);
    if ((e.RS_CONFIGSVR === 'true') !== members.every((m) => m.configsvr)) problems.push(`${initName}: configsvr flag disagrees with --configsvr`);
    const beside = members.find((m) => s.network_mode === `service:${m.name}`);
    if (!beside) problems.push(`${initName}: does not share a member's network (localhost exception)`);
    else if (beside.hostPort.split(':')[1] !== e.RS_PORT) problems.push(`${initName}: RS_PORT ${e.RS_PORT}, ${beside.name} listens on ${beside.hostPort}`);
  }
  for (const [name, s] of inits) if (!sets.has(env(s).RS_NAME!)) problems.push(`${name}: initiates ${env(s).RS_NAME}, which no mongod runs`);
  const configSets = [...sets].filter(([, m]) => m.every((x) => x.configsvr));
  const shardSets = [...sets].filter(([, m]) => m.every((x) => x.shardsvr));
  if (configSets.length !== 1) problems.push(`${configSets.length} config server replica sets`);
  if (shardSets.length < 1 || configSets.length + shardSets.length !== sets.size) problems.push('every other replica set must be --shardsvr');
  const setString = ([name, m]: [string, typeof ms]) => `${name}/${m.map((x) => x.hostPort).sort().join(',')}`;

  // --- mongos on the config server replica set, the shards added through it.
  const mongos = Object.entries(services).filter(([, s]) => isPsmdb(s) && argv(s)[0] === 'mongos');
  if (mongos.length !== 1) problems.push(`${mongos.length} mongos services`);
  const [mongosName, mongosService] = mongos[0] ?? ['', {}];
  const mongosArgs = argv(mongosService);
  const configdb = optionValue(mongosArgs, '--configdb') ?? '';
  const [cfgName, cfgHosts = ''] = configdb.split('/');
  if (configSets[0] && `${cfgName}/${cfgHosts.split(',').sort().join(',')}` !== setString(configSets[0])) {
    problems.push(`mongos --configdb ${configdb}, the config servers are ${setString(configSets[0])}`);
  }
  const mongosHostPort = `${mongosService.hostname ?? mongosName}:${optionValue(mongosArgs, '--port') ?? '27017'}`;
  const cluster = Object.entries(services).filter(([, s]) => env(s).SHARDS !== undefined);
  if (cluster.length !== 1) problems.push(`${cluster.length} addShard init services`);
  for (const [name, s] of cluster) {
    if (env(s).MONGOS !== mongosHostPort) problems.push(`${name}: MONGOS ${env(s).MONGOS}, the mongos is ${mongosHostPort}`);
    const shards = (env(s).SHARDS ?? '').split(/\s+/).filter(Boolean).map((x) => {
      const [n, h = ''] = x.split('/');
      return `${n}/${h.split(',').sort().join(',')}`;
    });
    if (JSON.stringify(shards.sort()) !== JSON.stringify(shardSets.map(setString).sort())) {
      problems.push(`${name}: adds ${shards.join(' ')}, the shard services are ${shardSets.map(setString).join(' ')}`);
    }
  }

  // --- internal authentication: every mongod and the mongos use the same keyfile.
  const keyFiles = new Set([...ms.map((m) => optionValue(m.args, '--keyFile')), optionValue(mongosArgs, '--keyFile')]);
  if (keyFiles.size !== 1 || keyFiles.has(undefined)) problems.push(`keyFiles differ or are missing: ${[...keyFiles].join(', ')}`);

  // --- no password in any command line, entrypoint or `environment` (env files and process.env only).
  const secrets = ['cutpoint.env.example', 'mongo-admin.env.example', 's3.env.example'].flatMap((f) =>
    read(f)
      .split('\n')
      .filter((l) => /^[A-Z_]*(?:PASSWORD|SECRET_ACCESS_KEY)=/.test(l))
      .map((l) => l.slice(l.indexOf('=') + 1)),
  );
  for (const [name, s] of Object.entries(services)) {
    const text = [...list(s.command), ...list(s.entrypoint)].join('\n');
    for (const secret of secrets) if (secret && text.includes(secret)) problems.push(`${name}: a password literal in its command`);
    if (/mongodb:\/\/[^/\s'"]*:[^/\s'"@]*@/.test(text)) problems.push(`${name}: credentials in a connection string`);
    if (/\bpwd\s*:\s*['"`]/.test(text)) problems.push(`${name}: a literal pwd in its command`);
    if (/(?:^|\s)(?:-p|--password)(?:\s+|=)(?!["']?\$)/.test(text)) problems.push(`${name}: a literal --password in its command`);
    for (const key of Object.keys(env(s))) {
      if ((/PASSWORD/.test(key) && !/^POSTGRES_/.test(key)) || /SECRET/.test(key)) problems.push(`${name}: ${key} in its environment, not in an env file`);
    }
  }
  return problems;
}

interface PromConfig {
  rule_files?: string[];
  scrape_configs?: Array<{ job_name: string; static_configs?: Array<{ targets?: string[] }> }>;
}

/**
 * Every problem of the metrics wiring: each cutpoint worker and agent serves metrics (CUTPOINT_METRICS_ADDRESS or
 * --metrics, a port), a Prometheus service mounts monitoring/ with the alert rules, and its configuration scrapes the
 * worker as job cutpoint-orchestrator and exactly the agents as job cutpoint-agent (the job names the rules use).
 */
function metricsProblems(c: Compose, prom: PromConfig): string[] {
  const problems: string[] = [];
  const targets = (job: string) => new Set((prom.scrape_configs ?? []).filter((j) => j.job_name === job).flatMap((j) => (j.static_configs ?? []).flatMap((sc) => sc.targets ?? [])));
  const want = { 'cutpoint-orchestrator': new Set<string>(), 'cutpoint-agent': new Set<string>() };
  for (const [name, s] of Object.entries(c.services)) {
    const verb = argv(s)[0];
    if (s.build === undefined || (verb !== 'worker' && verb !== 'agent')) continue;
    const address = optionValue(argv(s), '--metrics') ?? env(s).CUTPOINT_METRICS_ADDRESS;
    const port = address?.split(':').at(-1);
    if (!port) {
      problems.push(`${name}: serves no metrics (no CUTPOINT_METRICS_ADDRESS or --metrics)`);
      continue;
    }
    want[verb === 'worker' ? 'cutpoint-orchestrator' : 'cutpoint-agent'].add(`${s.hostname ?? name}:${port}`);
  }
  for (const [job, hosts] of Object.entries(want)) {
    const got = targets(job);
    for (const h of hosts) if (!got.has(h)) problems.push(`job ${job} does not scrape ${h}`);
    for (const h of got) if (!hosts.has(h)) problems.push(`job ${job} scrapes ${h}, which is no ${job === 'cutpoint-agent' ? 'agent' : 'worker'}`);
  }
  const prometheus = Object.entries(c.services).filter(([, s]) => s.image?.startsWith('prom/prometheus'));
  if (prometheus.length !== 1) problems.push(`${prometheus.length} prometheus services`);
  const config = prometheus[0] && mounts(prometheus[0][1]).find((m) => m.source === './monitoring');
  if (!config) problems.push('prometheus does not mount ./monitoring');
  else if (!list(prometheus[0]![1].command).includes(`--config.file=${config.target}/prometheus.yml`)) problems.push(`prometheus does not read ${config.target}/prometheus.yml`);
  if (!list(prom.rule_files).includes('cutpoint-rules.yml')) problems.push('prometheus.yml does not load cutpoint-rules.yml');
  return problems;
}

describe('docker-compose.yml', () => {
  const compose = loadCompose(COMPOSE_TEXT);

  it('is wired: an agent beside every mongod, real verbs, one Temporal, the replica sets and shards, no passwords', () => {
    expect(wiringProblems(compose)).toEqual([]);
    // The cluster the README describes: a config server replica set and two shards, every member with its agent.
    const ms = mongods(compose);
    expect(new Set(ms.map((m) => m.replSet))).toEqual(new Set(['cfg', 'rs0', 'rs1']));
    expect(ms.filter((m) => m.configsvr).length).toBeGreaterThanOrEqual(1);
  });

  it('fails when an agent is removed, points elsewhere, or mounts another volume', () => {
    const without = loadCompose(COMPOSE_TEXT);
    delete without.services['agent-cfg-b'];
    expect(wiringProblems(without)).toEqual(['mongod cfg-b (cfg-b:27019): 0 agents (), want exactly 1']);

    const wrongVolume = loadCompose(COMPOSE_TEXT);
    wrongVolume.services['agent-rs1-c']!.volumes = ['rs1-b-data:/data/db', 'backups:/backups'];
    expect(wiringProblems(wrongVolume)).toEqual(["agent-rs1-c: mounts rs1-b-data at /data/db, not rs1-c's volume rs1-c-data"]);

    const wrongPort = loadCompose(COMPOSE_TEXT);
    wrongPort.services['agent-rs0-a']!.command = ['agent', '--mongod', 'rs0-a:27017', '--dbpath', '/data/db'];
    expect(wiringProblems(wrongPort)).toEqual([
      'mongod rs0-a (rs0-a:27018): 0 agents (), want exactly 1',
      'agent-rs0-a: --mongod rs0-a:27017 is no mongod service',
    ]);
  });

  it('fails on an unknown verb or option, a stray Temporal address, a password literal, a replica set out of sync', () => {
    const c = loadCompose(COMPOSE_TEXT);
    c.services['cutpoint-worker']!.command = ['workers'];
    c.services['agent-cfg-a']!.command = ['agent', '--mongod', 'cfg-a:27019', '--data', '/data/db'];
    c.services['agent-rs1-a']!.environment = { TEMPORAL_ADDRESS: 'temporal:7234', CUTPOINT_MONGOD_PATH: '/usr/bin/mongod' };
    c.services['init-rs0']!.command = ["db.createUser({ user: 'x', pwd: 'hunter2', roles: [] })"];
    c.services['init-rs1']!.environment = { RS_NAME: 'rs1', RS_PORT: '27018', RS_MEMBERS: 'rs1-a:27018,rs1-b:27018' };
    c.services.mongos!.command = ['mongos', '--configdb', 'cfg/cfg-a:27019', '--port', '27017', '--keyFile', '/keys/keyfile'];
    const problems = wiringProblems(c);
    expect(problems).toEqual(
      expect.arrayContaining([
        'cutpoint-worker: "workers" is not a cutpoint verb',
        'agent-cfg-a: agent: unknown option(s) --data /data/db',
        'agent-rs1-a: TEMPORAL_ADDRESS temporal:7234, not temporal:7233',
        'init-rs0: a literal pwd in its command',
        'init-rs1: initiates rs1-a:27018,rs1-b:27018, the services are rs1-a:27018,rs1-b:27018,rs1-c:27018',
        'mongos --configdb cfg/cfg-a:27019, the config servers are cfg/cfg-a:27019,cfg-b:27019,cfg-c:27019',
      ]),
    );
  });

  it('fails when a cutpoint service lacks the S3 keys or endpoint, or a secret key is in an environment', () => {
    const c = loadCompose(COMPOSE_TEXT);
    c.services['agent-rs0-b']!.env_file = ['cutpoint.env'];
    c.services['cutpoint-worker']!.environment = { TEMPORAL_ADDRESS: 'temporal:7233', AWS_ENDPOINT_URL: 'http://s3:9000', AWS_SECRET_ACCESS_KEY: 'x' };
    expect(wiringProblems(c)).toEqual([
      'cutpoint-worker: AWS_ENDPOINT_URL http://s3:9000, not http://s3:7070',
      'agent-rs0-b: does not read s3.env',
      'cutpoint-worker: AWS_SECRET_ACCESS_KEY in its environment, not in an env file',
    ]);
    const none = loadCompose(COMPOSE_TEXT);
    delete none.services.s3;
    expect(wiringProblems(none)).toEqual(['no S3 service (versitygw posix on a volume)']);
  });

  it('documents a backup command the CLI accepts, through the mongos, into a bucket the S3 service holds', () => {
    const line = COMPOSE_TEXT.split('\n').find((l) => l.includes('docker compose run') && l.includes(' backup '));
    const words = line!.replace(/^#\s*/, '').split(/\s+/);
    const args = words.slice(words.indexOf('backup'));
    const { opts, problem } = parseVerb(args);
    expect(problem).toBeUndefined();
    expect(new URL(opts.uri as string).host).toBe('mongos:27017');
    const { bucket } = parseS3Location(opts.repo as string);
    // The bucket is a directory under the gateway's posix root, made on the same volume before the gateway starts.
    const s3 = s3Server(compose)!;
    const init = Object.entries(compose.services).find(([, s]) => list(s.entrypoint).join(' ').endsWith(`|| mkdir ${s3.root}/${bucket}`));
    expect(init).toBeDefined();
    expect(mounts(init![1])).toContainEqual({ source: s3.volume, target: s3.root });
    expect(compose.services[s3.name]!.depends_on).toMatchObject({ [init![0]]: { condition: 'service_completed_successfully' } });
  });

  it('serves metrics from the worker and every agent, scraped by its Prometheus with the alert rules', () => {
    const prom = parse(read('monitoring/prometheus.yml')) as PromConfig;
    expect(metricsProblems(compose, prom)).toEqual([]);
    const c = loadCompose(COMPOSE_TEXT);
    delete c.services['agent-rs1-b']!.environment;
    const missingJob = { ...prom, scrape_configs: prom.scrape_configs!.filter((j) => j.job_name !== 'cutpoint-orchestrator') };
    expect(metricsProblems(c, missingJob)).toEqual([
      'agent-rs1-b: serves no metrics (no CUTPOINT_METRICS_ADDRESS or --metrics)',
      'job cutpoint-orchestrator does not scrape cutpoint-worker:9464',
      'job cutpoint-agent scrapes agent-rs1-b:9464, which is no agent',
    ]);
  });
});
