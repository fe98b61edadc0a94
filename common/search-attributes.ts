/**
 * The typed search attributes of interfaces.md section 5. Workflow-safe (pure definitions): the workflows upsert
 * them, the provisioning code registers them on the dev server, the CLI filters on them.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const CutpointCluster = defineSearchAttributeKey('CutpointCluster', SearchAttributeType.KEYWORD);
export const CutpointKind = defineSearchAttributeKey('CutpointKind', SearchAttributeType.KEYWORD);
export const CutpointStatus = defineSearchAttributeKey('CutpointStatus', SearchAttributeType.KEYWORD);
export const CutpointPhase = defineSearchAttributeKey('CutpointPhase', SearchAttributeType.KEYWORD);
export const CutpointBytes = defineSearchAttributeKey('CutpointBytes', SearchAttributeType.INT);

/** Every key cutpoint uses, in registration order. */
export const SEARCH_ATTRIBUTES = [CutpointCluster, CutpointKind, CutpointStatus, CutpointPhase, CutpointBytes] as const;

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
