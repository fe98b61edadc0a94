/**
 * How a parent workflow (a backup, a restore) starts the child of one replica set: its id is `<parent id>.<replica
 * set>`, it is cancelled with its parent and waited for (its cleanup finishes before the parent's), and it is tagged
 * for the Temporal UI's search like its parent.
 */
import { ChildWorkflowCancellationType, ParentClosePolicy } from '@temporalio/workflow';
import { CutpointCluster, CutpointKind } from '../../common/search-attributes.ts';

export function replicaSetChildOptions(parentId: string, replicaSet: string, kind: 'backup' | 'restore', cluster: string) {
  return {
    workflowId: `${parentId}.${replicaSet}`,
    cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
    parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
    typedSearchAttributes: [
      { key: CutpointKind, value: kind },
      { key: CutpointCluster, value: cluster },
    ],
  };
}
