/**
 * Reading a workflow history for the benchmarks: the span of one activity type (a replica-set child's copy phase)
 * counts only that type's own scheduled and completed events.
 */
import { describe, expect, it } from 'vitest';
import { activitySpan } from './history.ts';

type Events = Parameters<typeof activitySpan>[0];
/** Plain numbers stand in for the decoded events' Long ids and seconds: history.ts reads both through String/Number. */
const history = (events: object[]) => events as unknown as Events;

/** A history event at `ms` epoch milliseconds. */
const at = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });
const scheduled = (eventId: number, ms: number, type: string) => ({ eventId, eventTime: at(ms), activityTaskScheduledEventAttributes: { activityType: { name: type } } });
const completed = (eventId: number, ms: number, scheduledEventId: number) => ({ eventId, eventTime: at(ms), activityTaskCompletedEventAttributes: { scheduledEventId } });

describe('activitySpan', () => {
  it("runs from the type's first scheduling to its last completion, other activities around it left out", () => {
    const events = history([
      scheduled(1, 10_000, 'planCopyBatches'),
      completed(2, 10_400, 1),
      scheduled(3, 10_500, 'copyBatch'),
      scheduled(4, 10_600, 'copyBatch'),
      completed(5, 12_250, 4),
      completed(6, 13_000, 3),
      scheduled(7, 13_100, 'closeBackupCursor'),
      completed(8, 14_000, 7),
    ]);
    expect(activitySpan(events, 'copyBatch')).toBeCloseTo(2.5, 6);
    expect(activitySpan(events, 'planCopyBatches')).toBeCloseTo(0.4, 6);
  });

  it('is null when no activity of the type completed', () => {
    const events = history([scheduled(1, 10_000, 'copyBatch'), scheduled(2, 10_100, 'closeBackupCursor'), completed(3, 10_200, 2)]);
    expect(activitySpan(events, 'copyBatch')).toBeNull();
    expect(activitySpan([], 'copyBatch')).toBeNull();
  });
});
