/**
 * The typed search attributes of docs/interfaces.md section 5. Workflow-safe (pure definitions): the workflows upsert
 * them, the provisioning code registers them on the dev server, the CLI filters on them.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** The cluster label (`--cluster`, by default the replica-set or config-server replica-set name). */
export const CutpointCluster = defineSearchAttributeKey('CutpointCluster', SearchAttributeType.KEYWORD);
/** What the workflow does: backup, restore, verify, retention, pitr. */
export const CutpointKind = defineSearchAttributeKey('CutpointKind', SearchAttributeType.KEYWORD);
/** running, complete, failed, cancelled. */
export const CutpointStatus = defineSearchAttributeKey('CutpointStatus', SearchAttributeType.KEYWORD);
/** The workflow's current phase (free-form keyword, e.g. the backup step under way). */
export const CutpointPhase = defineSearchAttributeKey('CutpointPhase', SearchAttributeType.KEYWORD);
/** Bytes copied so far (or in total, once complete). */
export const CutpointBytes = defineSearchAttributeKey('CutpointBytes', SearchAttributeType.INT);

/** Continuous oplog capture: the largest capture lag over the cluster's replica sets, seconds. */
export const CutpointLagSecs = defineSearchAttributeKey('CutpointLagSecs', SearchAttributeType.INT);
/** Continuous oplog capture: how many gaps (oplog lost before it was captured) the capture recorded. */
export const CutpointGaps = defineSearchAttributeKey('CutpointGaps', SearchAttributeType.INT);

/** Every key cutpoint uses, in registration order. */
export const SEARCH_ATTRIBUTES = [CutpointCluster, CutpointKind, CutpointStatus, CutpointPhase, CutpointBytes, CutpointLagSecs, CutpointGaps] as const;

const serverTypeName: Record<string, string> = {
  [SearchAttributeType.KEYWORD]: 'Keyword',
  [SearchAttributeType.INT]: 'Int',
  [SearchAttributeType.TEXT]: 'Text',
  [SearchAttributeType.BOOL]: 'Bool',
  [SearchAttributeType.DOUBLE]: 'Double',
  [SearchAttributeType.DATETIME]: 'Datetime',
  [SearchAttributeType.KEYWORD_LIST]: 'KeywordList',
};

/** `Name=Type` pairs as `temporal server start-dev --search-attribute` takes them. */
export function searchAttributeFlags(): string[] {
  return SEARCH_ATTRIBUTES.map((k) => {
    const type = serverTypeName[k.type];
    if (!type) throw new Error(`search attribute ${k.name}: no server type name for ${k.type}`);
    return `${k.name}=${type}`;
  });
}
