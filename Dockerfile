# syntax=docker/dockerfile:1
# The gateway's image, also used for the provider simulator (docker-compose.yml).
# The build stage compiles src/ to dist/ (tsc); the runtime stage is the production node_modules,
# dist and bin (which runs dist when it is built), run by the unprivileged `node`.

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# `npm install`, not `npm ci`: see scripts/setup.sh (registries that leave optional packages out of the lock)
RUN npm install --omit=dev --no-audit --no-fund --loglevel=error

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --no-audit --no-fund --loglevel=error
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HTTP_HOST=0.0.0.0 \
    HTTP_PORT=3000 \
    DATA_DIR=/app/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY bin ./bin
# the gRPC API's definition, loaded at run time (and served by reflection)
COPY proto ./proto
COPY --from=build /app/src ./src
# after src: bin runs dist only when it is at least as new as every source file
COPY --from=build /app/dist ./dist
# the only writable place: `start` keeps gateway.json here (and the embedded nats-server its store)
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 3000 50051
# node has fetch; the slim image has no curl
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.HTTP_PORT ?? 3000}/health`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# a larger young generation: a busy gateway allocates short-lived objects per message
CMD ["node", "--max-semi-space-size=32", "--min-semi-space-size=16", "bin/sms-gateway.mjs", "start", "--host", "0.0.0.0"]
