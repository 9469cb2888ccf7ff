import { z } from 'zod';
import { errorOut } from './schemas.js';
import type { Route } from './routes.js';

/**
 * The OpenAPI 3.1 document of the admin API (GET /admin/openapi.json), generated from the route
 * table and its zod schemas (JSON Schema 2020-12, OpenAPI 3.1's dialect): the schemas that validate
 * requests are the ones documented.
 */
export function openApiDocument(routes: readonly Route[], version: string): unknown {
  const schema = (s: z.ZodType): unknown => {
    const { $schema: _drop, ...rest } = z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
    return rest;
  };
  const json = (s: z.ZodType) => ({ 'application/json': { schema: schema(s) } });
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const parameters: unknown[] = [];
    for (const match of route.path.matchAll(/\{(\w+)\}/g)) parameters.push({ name: match[1], in: 'path', required: true, schema: { type: 'string' } });
    if (route.query !== undefined) {
      const q = schema(route.query) as { properties: Record<string, unknown>; required?: string[] };
      for (const [name, s] of Object.entries(q.properties)) parameters.push({ name, in: 'query', required: q.required?.includes(name) === true, schema: s });
    }
    const responses: Record<string, unknown> = {};
    for (const [status, answer] of Object.entries(route.responses)) responses[status] = { description: answer.description, content: json(answer.schema) };
    responses['400'] = { description: 'invalid request (the message names the field)', content: json(errorOut) };
    responses['401'] = { description: 'missing or wrong admin credential', content: json(errorOut) };
    (paths[route.path] ??= {})[route.method.toLowerCase()] = {
      summary: route.summary,
      ...(parameters.length === 0 ? {} : { parameters }),
      ...(route.body === undefined ? {} : { requestBody: { required: true, content: json(route.body) } }),
      responses,
    };
  }
  paths['/admin/openapi.json'] = {
    get: { summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } }, 401: { description: 'missing or wrong admin credential', content: json(errorOut) } } },
  };
  return {
    openapi: '3.1.0',
    info: { title: 'claude-gateway admin API', version, description: 'Keys, teams and spend. Served on the admin listener only (ADMIN_HOST:ADMIN_PORT).' },
    components: { securitySchemes: { admin: { type: 'http', scheme: 'bearer', description: 'ADMIN_API_KEY' } } },
    security: [{ admin: [] }],
    paths,
  };
}
