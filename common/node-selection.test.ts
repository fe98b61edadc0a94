import { describe, expect, it } from 'vitest';
import { selectNode, type MemberView } from './node-selection.ts';

const m = (host: string, over: Partial<MemberView> = {}): MemberView => ({
  host,
  state: 'SECONDARY',
  healthy: true,
  hidden: false,
  delaySecs: 0,
  lagSecs: 0,
  ...over,
});
const P = m('p:1', { state: 'PRIMARY' });

describe('selectNode', () => {
  it.each([
    ['least-lagging secondary', [P, m('a:1', { lagSecs: 3 }), m('b:1', { lagSecs: 1 })], 'b:1'],
    ['hidden before visible, even with more lag', [P, m('a:1'), m('h:1', { hidden: true, lagSecs: 2 })], 'h:1'],
    ['delayed never', [P, m('d:1', { delaySecs: 3600, hidden: true })], 'p:1'],
    ['unhealthy never', [P, m('x:1', { healthy: false })], 'p:1'],
    ['over the lag ceiling never', [P, m('a:1', { lagSecs: 100 })], 'p:1'],
    ['recovering members never', [P, m('r:1', { state: 'RECOVERING' })], 'p:1'],
    ['primary last', [P, m('a:1', { lagSecs: 5 })], 'a:1'],
    ['ties broken by host for stable choices', [P, m('b:1'), m('a:1')], 'a:1'],
  ])('%s', (_name, members, expected) => {
    expect(selectNode(members, { maxLagSecs: 30 }).node).toBe(expected);
  });

  it('explains why no member qualifies', () => {
    const r = selectNode([m('p:1', { state: 'PRIMARY', healthy: false }), m('a:1', { lagSecs: 99 })], { maxLagSecs: 10 });
    expect(r.node).toBeNull();
    expect(r.reason).toBe('p:1: not reachable/healthy; a:1: lagging 99s (ceiling 10s)');
  });

  it('honours an explicit node, or says why it cannot', () => {
    const members = [P, m('a:1'), m('d:1', { delaySecs: 60 })];
    expect(selectNode(members, { maxLagSecs: 30, node: 'p:1' })).toEqual({ node: 'p:1', reason: 'requested' });
    expect(selectNode(members, { maxLagSecs: 30, node: 'd:1' }).reason).toMatch(/requested but is delayed/);
    expect(selectNode(members, { maxLagSecs: 30, node: 'z:9' }).reason).toMatch(/not a member/);
  });
});
