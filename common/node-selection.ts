/**
 * Which member of a replica set to back up (docs/architecture.md, "The path of a backup"): healthy secondaries with the least lag first,
 * hidden before visible, delayed members never, the primary last; a lag ceiling; or an explicit override. Pure, so
 * the rules are table-tested and the reason for every exclusion reaches the user.
 */

export interface MemberView {
  host: string;
  state: 'PRIMARY' | 'SECONDARY' | string;
  healthy: boolean;
  hidden: boolean;
  /** secondaryDelaySecs */
  delaySecs: number;
  /** Seconds behind the primary's last applied write (0 for the primary). */
  lagSecs: number;
}

export interface SelectionOptions {
  /** Maximum acceptable lag of a secondary, seconds. */
  maxLagSecs: number;
  /** Use this member (host:port) or fail saying why not. */
  node?: string;
}

export type Selection = { node: string; reason: string } | { node: null; reason: string };

function why(m: MemberView, opts: SelectionOptions): string | undefined {
  if (!m.healthy) return 'not reachable/healthy';
  if (m.state !== 'PRIMARY' && m.state !== 'SECONDARY') return `in state ${m.state}`;
  if (m.delaySecs > 0) return `delayed by secondaryDelaySecs=${m.delaySecs}`;
  if (m.state === 'SECONDARY' && m.lagSecs > opts.maxLagSecs) return `lagging ${m.lagSecs}s (ceiling ${opts.maxLagSecs}s)`;
  return undefined;
}

/** Chooses the member to back up, or says why none qualifies. */
export function selectNode(members: MemberView[], opts: SelectionOptions): Selection {
  if (opts.node) {
    const m = members.find((x) => x.host === opts.node);
    if (!m) return { node: null, reason: `${opts.node} is not a member (members: ${members.map((x) => x.host).join(', ')})` };
    const bad = why(m, opts);
    return bad ? { node: null, reason: `${opts.node} was requested but is ${bad}` } : { node: m.host, reason: 'requested' };
  }
  const eligible = members.filter((m) => why(m, opts) === undefined);
  const rank = (m: MemberView) => [m.state === 'PRIMARY' ? 1 : 0, m.hidden ? 0 : 1, m.lagSecs] as const;
  eligible.sort((a, b) => {
    const [x, y] = [rank(a), rank(b)];
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2] || a.host.localeCompare(b.host);
  });
  const best = eligible[0];
  if (best) {
    const kind = best.state === 'PRIMARY' ? 'the primary (no eligible secondary)' : `${best.hidden ? 'hidden ' : ''}secondary, lag ${best.lagSecs}s`;
    return { node: best.host, reason: kind };
  }
  return { node: null, reason: members.map((m) => `${m.host}: ${why(m, opts)}`).join('; ') };
}
