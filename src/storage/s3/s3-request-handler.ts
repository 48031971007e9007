// What the S3 driver puts around the SDK's HTTP handler and into its
// middleware for bodies it sends as streams (s3-body.ts): each attempt of a
// request (the SDK's retries go through the handler again) gets a fresh stream
// of the body, and the body's SHA-256 is set before the request is signed.
// SDK-free: the handler and the stack are typed only as far as used here.

import { ReplayableBody } from './s3-body.js';

interface HttpRequestLike {
  body?: unknown;
  headers: Record<string, string>;
}

/** The SDK's HttpHandler, as far as the client calls it. */
export interface HttpHandlerLike {
  handle(request: HttpRequestLike, options?: unknown): Promise<unknown>;
  destroy?(): void;
  updateHttpClientConfig?(key: never, value: never): void;
  httpHandlerConfigs?(): unknown;
  metadata?: unknown;
}

/** Hands the inner handler a new stream of a ReplayableBody for every attempt; other requests as they are. */
export function replayingHandler(inner: HttpHandlerLike): HttpHandlerLike {
  return {
    handle(request, options) {
      const body = request.body;
      if (!(body instanceof ReplayableBody)) return inner.handle(request, options);
      // A copy: the request object itself is used again by the next attempt.
      const attempt = Object.assign(Object.create(Object.getPrototypeOf(request) as object) as HttpRequestLike, request, { body: body.stream() });
      return inner.handle(attempt, options);
    },
    destroy: () => inner.destroy?.(),
    updateHttpClientConfig: (key, value) => inner.updateHttpClientConfig?.(key, value),
    httpHandlerConfigs: () => inner.httpHandlerConfigs?.(),
    metadata: inner.metadata,
  };
}

type Next = (args: { request?: HttpRequestLike }) => Promise<unknown>;

/** Build-step middleware: x-amz-content-sha256 of a ReplayableBody (the signer takes the header as the payload's hash). */
export function payloadHashMiddleware(next: Next): Next {
  return (args) => {
    const body = args.request?.body;
    if (body instanceof ReplayableBody) args.request!.headers['x-amz-content-sha256'] = body.sha256;
    return next(args);
  };
}
