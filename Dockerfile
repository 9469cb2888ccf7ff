# syntax=docker/dockerfile:1
# Two images from one file. The default (last stage) is the production gateway: dist/src only, built
# by tsconfig.build.json, with no mock and no demo. `--target mock` is the project's mock Anthropic
# API (tools/mock-upstream), the upstream of docker-compose.yml's stack; it holds no gateway code.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build:prod && npm prune --omit=dev

FROM deps AS mock-build
COPY tsconfig.json tsconfig.mock.json ./
COPY tools/mock-upstream ./tools/mock-upstream
RUN npx tsc -p tsconfig.mock.json && npm prune --omit=dev

FROM node:20-bookworm-slim AS mock
ENV NODE_ENV=production
WORKDIR /app
COPY --from=mock-build --chown=node:node /app/node_modules ./node_modules
COPY --from=mock-build --chown=node:node /app/dist/tools/mock-upstream ./dist/tools/mock-upstream
COPY --chown=node:node package.json ./package.json
USER node
EXPOSE 4010
CMD ["node", "dist/tools/mock-upstream/main.js"]

FROM node:20-bookworm-slim AS gateway
ENV NODE_ENV=production PORT=8080 HOST=0.0.0.0
WORKDIR /app
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist/src ./dist/src
COPY --chown=node:node package.json ./package.json
# The embedded governance store (GOVERNANCE_DATA_DIR, when ADMIN_API_KEY is set without DATABASE_URL): mount a volume here.
RUN mkdir -p /app/data/governance && chown -R node:node /app/data
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form: node is PID 1's child-free process and receives SIGTERM directly for the graceful drain.
CMD ["node", "dist/src/main.js"]
