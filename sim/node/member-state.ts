/** A replica-set member's state, as `replSetGetStatus` names it, and the numbers mongod sends on the wire. */

export type MemberState = 'STARTUP' | 'PRIMARY' | 'SECONDARY' | 'RECOVERING' | 'STARTUP2' | 'DOWN' | 'REMOVED';

/** mongod's `MemberState` codes (`state`/`myState` of replSetGetStatus, `state` of a heartbeat reply). */
export const STATE_CODES: Record<MemberState, number> = {
  STARTUP: 0,
  PRIMARY: 1,
  SECONDARY: 2,
  RECOVERING: 3,
  STARTUP2: 5,
  DOWN: 8,
  REMOVED: 10,
};

/** The state a numeric code names (a heartbeat reply's `state`); STARTUP for a code the simulator does not know. */
export function memberStateOf(code: number): MemberState {
  const found = Object.entries(STATE_CODES).find(([, c]) => c === code);
  return (found?.[0] as MemberState | undefined) ?? 'STARTUP';
}
