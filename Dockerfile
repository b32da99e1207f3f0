# syntax=docker/dockerfile:1
# The iotedge-operator image: compiled JavaScript (dist/) and production dependencies on Node.js 24 LTS, run by
# tini as a non-root user. Build: docker build -t iotedge-operator:dev .
# The Node version matches scripts/with-node.sh; test/unit/dockerfile.test.ts keeps them in step.

# Production dependencies only.
FROM node:24.21.0-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund || npm install --omit=dev --no-save --no-audit --no-fund

# Compile src/ to dist/, and fetch tini from Debian.
FROM node:24.21.0-bookworm-slim AS build
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund || npm install --no-save --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/with-node.sh scripts/with-node.sh
COPY src src
RUN npm run build

# The runtime: no compiler, no package manager.
FROM node:24.21.0-bookworm-slim AS runtime
# npm, npx, corepack and yarn are of no use to the operator; removing them removes their vulnerabilities too.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
    /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /usr/bin/tini /usr/bin/tini
COPY --from=deps /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json package.json
COPY bin bin
COPY crds crds
# A numeric user, so that runAsNonRoot can verify it without an /etc/passwd entry.
USER 65532:65532
EXPOSE 8080 8081
# tini is PID 1: it forwards SIGTERM to node, which then drains in-flight reconciles, and reaps zombies.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "bin/iotedge-operator.js"]
CMD ["run"]
