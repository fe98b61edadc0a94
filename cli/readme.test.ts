/**
 * The README's table of `cutpoint` verbs ("Processes and the CLI") against the commander program of program.ts: the
 * same verbs (and `schedule` subcommands), options that exist, the required options shown, the positional arguments
 * counted right. The program is built, not run.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from './program.ts';

const program = buildProgram({
  log: () => {
    throw new Error('not run');
  },
  out: () => undefined,
  setExit: () => undefined,
});

/** One verb a README row names, with the part of the row's command that follows its name. */
interface Entry {
  path: string[];
  text: string;
}

/** A row of the table: its command cell (between the backquotes, `\|` unescaped to `|` only inside `text`s). */
interface Row {
  code: string;
  entries: Entry[];
}

/**
 * The rows whose first cell is a `cutpoint …` command. A verb with subcommands names them as alternatives separated
 * by `\|` (`schedule list\|describe <name>\|…`): the leading words of the alternatives, up to the first one that does
 * not start with a word (`create … (--every 6h \| --cron …)` is the single subcommand `create`).
 */
function readmeRows(): Row[] {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  return [...readme.matchAll(/^\| `cutpoint ([^`]+)` \|/gm)].map(([, code]) => {
    const [verb = '', ...rest] = code!.split(' ');
    const after = rest.join(' ');
    const cmd = program.commands.find((c) => c.name() === verb);
    if (!cmd || cmd.commands.length === 0) return { code: code!, entries: [{ path: [verb], text: after.replaceAll('\\|', '|') }] };
    const entries: Entry[] = [];
    const alternatives = after.split('\\|');
    for (const [i, alternative] of alternatives.entries()) {
      const m = /^([a-z][a-z-]*)(.*)$/s.exec(alternative);
      if (!m) {
        const last = entries.at(-1);
        if (last) last.text += `|${alternatives.slice(i).join('|')}`;
        else entries.push({ path: [verb], text: after.replaceAll('\\|', '|') });
        break;
      }
      // A subcommand with subcommands of its own (`repo key add`): the next word names one of them.
      const nested = cmd.commands.find((c) => c.name() === m[1])?.commands.length ? /^\s*([a-z][a-z-]*)(.*)$/s.exec(m[2]!) : null;
      if (nested) entries.push({ path: [verb, m[1]!, nested[1]!], text: nested[2]!.trim() });
      else entries.push({ path: [verb, m[1]!], text: m[2]!.trim() });
    }
    return { code: code!, entries };
  });
}

/** The command at `path`, or undefined. */
function commandAt(path: string[]): Command | undefined {
  let cmd: Command | undefined = program;
  for (const name of path) cmd = cmd?.commands.find((c) => c.name() === name);
  return cmd;
}

/** Every verb path of the program: verbs without subcommands, and `verb sub` for each subcommand. */
function programPaths(cmd: Command = program, prefix: string[] = []): string[] {
  return cmd.commands.flatMap((c) => (c.commands.length > 0 ? programPaths(c, [...prefix, c.name()]) : [[...prefix, c.name()].join(' ')]));
}

/** The `--options` a command text mentions; `--keep-…` stands for the options beginning `--keep-`. */
const optionsIn = (text: string) => [...text.matchAll(/--[a-z][a-z-]*…?/g)].map(([o]) => o);

describe('the README table of cutpoint verbs', () => {
  const rows = readmeRows();

  it('lists exactly the verbs the program defines', () => {
    expect(rows.length).toBeGreaterThan(10);
    const listed = rows.flatMap((r) => r.entries.map((e) => e.path.join(' ')));
    expect([...listed].sort()).toEqual(programPaths().sort());
  });

  it.each(rows.map((r) => [r.code, r] as const))('`cutpoint %s`: its options exist, its required options and arguments are shown', (_code, row) => {
    const commands = row.entries.map((e) => commandAt(e.path));
    expect(commands.every((c) => c !== undefined)).toBe(true);
    const longs = new Set(commands.flatMap((c) => c!.options.map((o) => o.long)));
    for (const option of optionsIn(row.code)) {
      const known = option.endsWith('…') ? [...longs].some((l) => l?.startsWith(option.slice(0, -1))) : longs.has(option);
      expect(known, `${option} is an option of cutpoint ${row.entries.map((e) => e.path.join(' ')).join(' / ')}`).toBe(true);
    }
    for (const [i, entry] of row.entries.entries()) {
      const cmd = commands[i]!;
      const required = cmd.options.filter((o) => o.mandatory).map((o) => o.long);
      expect(required.filter((o) => !optionsIn(entry.text).includes(o!)), `required options of cutpoint ${entry.path.join(' ')} not shown`).toEqual([]);
      const shownArgs = entry.text.match(/<[^>]+>/g) ?? [];
      expect(shownArgs.length, `arguments of cutpoint ${entry.path.join(' ')}: ${cmd.registeredArguments.map((a) => a.name()).join(', ')}`).toBe(
        cmd.registeredArguments.length,
      );
    }
  });
});
