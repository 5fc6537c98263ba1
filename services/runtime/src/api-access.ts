/**
 * Who may call a service's API, and how often. A caller shows a bearer JWT, verified against the
 * configured keys (a JWKS, inline or at a URL), issuer and audience; its subject claim is the one
 * party it may act for, and the operator scope lets it act for anyone (listings included). Off
 * when no keys are configured (a local run), on when they are (the chart's default). Requests are
 * counted per caller (its subject, else its address) when a rate limit is set.
 *
 * A refused request is answered before its body is read: 401 (no token, or one that does not
 * verify) or 429 (too many), each with the reason; 403 is the routes' own, once they know whose
 * data a request is about (mayActFor, isOperator).
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose';
import { ConfigError, envInt, envString } from './config.js';
import type { Logger } from './context.js';

export interface Caller {
  /** The party this caller acts for (the token's subject claim). */
  readonly subject: string;
  /** May act for anyone. */
  readonly operator: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Who called, when authentication is on. */
    caller?: Caller;
  }
  interface FastifyContextConfig {
    /** Answered without a token (an API description). */
    public?: boolean;
  }
}

export interface AccessConfig {
  readonly authentication?: {
    readonly keys: JWTVerifyGetKey;
    readonly issuer?: string;
    readonly audience: string;
    readonly subjectClaim: string;
    readonly operatorScope: string;
  };
  /** Requests per window and client; 0 is no limit. */
  readonly rateLimit: { readonly max: number; readonly windowMs: number };
}

export function accessConfig(): AccessConfig {
  const jwksUrl = process.env.AUTH_JWKS_URL;
  const jwks = process.env.AUTH_JWKS;
  let keys: JWTVerifyGetKey | undefined;
  if (jwksUrl && jwks) throw new ConfigError('set AUTH_JWKS_URL or AUTH_JWKS, not both');
  if (jwksUrl) {
    let url: URL;
    try {
      url = new URL(jwksUrl);
    } catch {
      throw new ConfigError(`AUTH_JWKS_URL "${jwksUrl}" is not a URL`);
    }
    keys = createRemoteJWKSet(url);
  } else if (jwks) {
    let set: JSONWebKeySet;
    try {
      set = JSON.parse(jwks) as JSONWebKeySet;
      keys = createLocalJWKSet(set);
    } catch (err) {
      throw new ConfigError(`AUTH_JWKS is not a JSON Web Key Set: ${(err as Error).message}`);
    }
  }
  return {
    ...(keys
      ? {
          authentication: {
            keys,
            ...(process.env.AUTH_ISSUER ? { issuer: process.env.AUTH_ISSUER } : {}),
            audience: envString('AUTH_AUDIENCE', 'ordersaga'),
            subjectClaim: envString('AUTH_SUBJECT_CLAIM', 'sub'),
            operatorScope: envString('AUTH_OPERATOR_SCOPE', 'ordersaga:operator'),
          },
        }
      : {}),
    rateLimit: { max: envInt('RATE_LIMIT_MAX', 0), windowMs: envInt('RATE_LIMIT_WINDOW_MS', 60_000) },
  };
}

const refuse = (reply: FastifyReply, message: string) =>
  reply
    .code(401)
    .header('www-authenticate', `Bearer error="invalid_token", error_description="${message.replaceAll('"', "'")}"`)
    .send({ statusCode: 401, error: 'Unauthorized', message });

/** Why a token does not verify, in words a caller can act on. */
function verificationFailure(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'the token has expired';
  if (err instanceof errors.JWTClaimValidationFailed)
    return `the token's "${err.claim}" claim is not accepted: ${err.reason}`;
  if (err instanceof errors.JWSSignatureVerificationFailed || err instanceof errors.JWKSNoMatchingKey) {
    return 'the token is not signed by a trusted key';
  }
  if (err instanceof errors.JOSEError) return `the token is invalid: ${err.message}`;
  return 'the token could not be verified';
}

function scopesOf(payload: Record<string, unknown>): string[] {
  const { scope, scp } = payload;
  if (typeof scope === 'string') return scope.split(' ');
  if (Array.isArray(scp)) return scp.filter((s): s is string => typeof s === 'string');
  return [];
}

/** Registers authentication and rate limiting on the scope of a service's own routes. */
export async function apiAccess(scope: FastifyInstance, config: AccessConfig, log: Logger): Promise<void> {
  const { authentication } = config;
  if (authentication) {
    scope.addHook('onRequest', async (request, reply) => {
      if (request.routeOptions.config.public) return;
      const header = request.headers.authorization;
      const token = header?.match(/^Bearer +(\S+)$/i)?.[1];
      if (!token)
        return refuse(
          reply,
          header ? 'the Authorization header is not "Bearer <token>"' : 'a bearer token is required',
        );
      try {
        const { payload } = await jwtVerify(token, authentication.keys, {
          audience: authentication.audience,
          ...(authentication.issuer ? { issuer: authentication.issuer } : {}),
          requiredClaims: [authentication.subjectClaim, 'exp'],
        });
        const subject = payload[authentication.subjectClaim];
        if (typeof subject !== 'string' || subject === '') {
          return refuse(reply, `the token's "${authentication.subjectClaim}" claim is not a string`);
        }
        request.caller = { subject, operator: scopesOf(payload).includes(authentication.operatorScope) };
      } catch (err) {
        return refuse(reply, verificationFailure(err));
      }
    });
  }
  log.info(
    {
      authentication: authentication ? { audience: authentication.audience, issuer: authentication.issuer } : 'off',
      rateLimit: config.rateLimit.max ? config.rateLimit : 'off',
    },
    authentication ? 'API: bearer JWT required' : 'API: no authentication (AUTH_JWKS or AUTH_JWKS_URL turns it on)',
  );
  if (config.rateLimit.max > 0) {
    // After authentication (hooks run in order): a caller is counted by who it is, wherever it calls from.
    await scope.register(rateLimit, {
      max: config.rateLimit.max,
      timeWindow: config.rateLimit.windowMs,
      keyGenerator: (request) => (request.caller ? `caller:${request.caller.subject}` : `address:${request.ip}`),
      errorResponseBuilder: (_request, context) => ({
        statusCode: 429,
        error: 'Too Many Requests',
        message: `more than ${context.max} requests in ${config.rateLimit.windowMs} ms from this client; retry in ${context.after}`,
      }),
    });
  }
}

/** May the request act for this party (its own orders, account, notifications)? Always, with authentication off. */
export const mayActFor = (request: FastifyRequest, subject: string): boolean =>
  !request.caller || request.caller.operator || request.caller.subject === subject;

/** May the request see everyone's data? Always, with authentication off. */
export const isOperator = (request: FastifyRequest): boolean => !request.caller || request.caller.operator;

/** The platform's 403: authenticated, but not for this. */
export function forbidden(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(403).send({ statusCode: 403, error: 'Forbidden', message });
}
