/**
 * Helpers over the generated wire types: the request bodies a ClientFrame
 * can carry, and typed access to a Reply's body.
 */
import { type MessageInitShape, protoInt64 } from '@bufbuild/protobuf';
import { ImError, ImErrorCode } from './errors.js';
import type { ClientFrameSchema, Reply } from './gen/liveim/v1/client_pb.js';
import type { ImAuth } from './types.js';

/** RequestBody is the `body` of a ClientFrame: {case, value}. */
export type RequestBody = NonNullable<MessageInitShape<typeof ClientFrameSchema>['body']>;

/** ReplyCase names a Reply body. */
export type ReplyCase = NonNullable<Reply['body']['case']>;

/** ReplyValue is the value of the Reply body named C. */
export type ReplyValue<C extends ReplyCase> = Extract<Reply['body'], { case: C }>['value'];

/** replyBody returns the reply's body of case c, or throws ImError 604 when it carries another. */
export function replyBody<C extends ReplyCase>(rep: Reply, c: C): ReplyValue<C> {
  if (rep.body.case !== c) {
    throw new ImError(ImErrorCode.SDK_PARSE_ERROR, `expected a ${c} reply, got ${rep.body.case ?? 'an empty one'}`);
  }
  return rep.body.value as ReplyValue<C>;
}

/** wireAuth is the wire's UserAuth for auth. */
export function wireAuth(auth: ImAuth): { timestamp: bigint; nonce: string; role: string; token: string } {
  return {
    timestamp: protoInt64.parse(Math.trunc(auth.timestamp)),
    nonce: auth.nonce ?? '',
    role: auth.role ?? '',
    token: auth.token,
  };
}
