# syntax=docker/dockerfile:1
#
# s3migrate as a container image: one process per container, arguments after the image name are
# s3migrate's own (docker run IMAGE copy --to s3://dst --state postgres://...).
#
#   docker build -t s3migrate .
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/data" s3migrate catalog --from s3://old-bucket
#
# /data is the working directory: a ./state.db and a .env there are found as on a laptop (--user lets
# the process write to the mounted folder). With a PostgreSQL state (--state postgres://...) nothing
# is written inside the container.
#
# Node.js 20, 22 and 24 are supported (package.json engines >= 20); 22 is the default.
ARG NODE_VERSION=22

FROM node:${NODE_VERSION}-bookworm-slim AS base
WORKDIR /app
ENV npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false

# ---- build: TypeScript -> dist/ -------------------------------------------------------------------
# `npm install`, not `npm ci`: the lock file cannot list rollup's optional packages for other
# platforms, so `npm ci` refuses it as out of sync (see .ci/run). --ignore-scripts: the compiler needs
# no native module, and `prepare` would build before src/ is here.
FROM base AS build
COPY package.json package-lock.json ./
RUN npm install --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- deps: production dependencies, better-sqlite3 compiled from source ---------------------------
# Compiled here against the headers of the very Node.js that runs it (npm_config_nodedir: no header
# download), rather than a prebuilt binary fetched from the internet. Only the .node file is kept.
FROM base AS deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
ENV npm_config_nodedir=/usr/local \
    npm_config_build_from_source=true
RUN npm install --omit=dev --ignore-scripts \
 && npm rebuild better-sqlite3 \
 && cd node_modules/better-sqlite3 \
 && find build -mindepth 1 -not -path build/Release -not -path build/Release/better_sqlite3.node -prune -exec rm -rf {} + \
 && rm -rf deps src \
 && cd /app \
 && node -e "const D = require('better-sqlite3'); new D(':memory:').close()"

# ---- runtime --------------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim
LABEL org.opencontainers.image.title="s3migrate" \
      org.opencontainers.image.description="Resumable migration of every object from one S3-compatible bucket to another" \
      org.opencontainers.image.licenses="MIT"
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only for the user that runs them.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json LICENSE ./
COPY bin ./bin
RUN mkdir /data && chown 1000:1000 /data
WORKDIR /data

# The base image's `node` user, by number so that Kubernetes' runAsNonRoot can check it.
USER 1000:1000
RUN node /app/bin/s3migrate.js --help >/dev/null \
 && node -e "const D = require('/app/node_modules/better-sqlite3'); new D(':memory:').close()"

# No health check: s3migrate is a batch process that exits when its work is done (exit codes 0, 3, 1,
# 2, 130 say how it went). A periodic probe adds nothing a batch scheduler can act on, and a probe that
# restarted a worker busy with one slow multipart object would only throw that work away. Kubernetes
# ignores HEALTHCHECK anyway; the Job watches exit codes (deploy/kubernetes/copy-job.yaml).
HEALTHCHECK NONE

# SIGTERM (docker stop, Kubernetes, systemd) stops scheduling and lets in-flight objects finish, then
# exits 130. Give it time: `docker stop -t 300`. Node.js runs as PID 1 and handles SIGTERM itself.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/s3migrate.js"]
CMD ["--help"]
