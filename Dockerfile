# syntax=docker/dockerfile:1
#
# One Dockerfile for the images of every component; WORKSPACE picks its npm workspace, PORT is its
# HTTP port (both from the component registry, services/contracts/src/components.ts; checked), for
# EXPOSE and ENV PORT:
#
# generated:images (npm run generate, from services/contracts: do not edit)
#   docker build --build-arg WORKSPACE=services/order        --build-arg PORT=3000 -t ordersaga-order .
#   docker build --build-arg WORKSPACE=services/stock        --build-arg PORT=3001 -t ordersaga-stock .
#   docker build --build-arg WORKSPACE=services/billing      --build-arg PORT=3002 -t ordersaga-billing .
#   docker build --build-arg WORKSPACE=services/notification --build-arg PORT=3003 -t ordersaga-notification .
#   docker build --build-arg WORKSPACE=operator              --build-arg PORT=3010 -t ordersaga-operator .
# end:images
#
# (skaffold.yaml passes the same.) Needs BuildKit (RUN --mount): Docker >= 23 uses it by default.
#
# Stages: manifests (package.json files + lockfile) -> deps (npm ci, shared by all the images)
# -> build (tsc -b of the one workspace) -> prune (production dependencies of that workspace
# only) -> runtime (+ tini, from Debian's package).

# Build and runtime use the same image, so the Node.js that compiled and installed is the one
# that runs: Node.js 24 LTS, the release in .node-version (checked). Runtime base:
# node:24-bookworm-slim rather than gcr.io/distroless/nodejs24-debian12: distroless publishes no
# Node.js patch tags, so it can only be pinned by digest, and its ENTRYPOINT is already node
# (CMD ["node", ...] would run "node node ..."). The slim image, pinned to a patch release, also
# has a shell for `kubectl exec`. Pin it by digest as well where you build (NODE_IMAGE=
# node:24.22.3-bookworm-slim@sha256:...): the digest is not written here because it cannot be
# checked from a machine without a registry to ask.
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

############################################################################ manifests
# Only the package.json of every workspace and the lockfile, found rather than listed: a new
# workspace needs no change here. Any source change reruns this stage, but its result stays
# byte-identical, so the npm ci layer below keeps its cache until a package.json or the lockfile
# changes.
FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY . .
RUN mkdir /manifests \
 && find . -name node_modules -prune -o -name package.json -type f -exec cp --parents -t /manifests {} + \
 && cp package-lock.json /manifests/

############################################################################ deps
# Every workspace's dependencies, dev ones included (typescript, @types/*). No ARG is used before
# this point, so all the images share this layer. --ignore-scripts: no install script is needed
# (@parcel/watcher's is for a test-only dependency; protobufjs' only checks version schemes).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY --from=manifests /manifests/ ./
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci --ignore-scripts --no-audit --no-fund

############################################################################ build
FROM deps AS build
ARG WORKSPACE
ARG PORT
COPY . .
# WORKSPACE and PORT must be a component's in the registry (services/contracts/src/components.ts),
# the one list of components the local runner, the chart and skaffold use: checked by
# scripts/image-args.js once the registry is built.
RUN npx tsc -b services/contracts \
 && node scripts/image-args.js "${WORKSPACE}" "${PORT}" \
 && npx tsc -b "${WORKSPACE}" \
 && test -f "${WORKSPACE}/dist/main.js"

############################################################################ prune
# A fresh install of the production dependencies of this workspace alone: --workspace leaves out
# the root's devDependencies (jest, typescript, ...) and the other workspaces' dependencies.
# @ordersaga/runtime and @ordersaga/contracts are workspaces, so node_modules/@ordersaga/* are
# symlinks to services/*: their package.json and dist/ are copied next to the workspace's own.
FROM ${NODE_IMAGE} AS prune
ARG WORKSPACE
WORKDIR /app
COPY --from=manifests /manifests/ ./
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci --omit=dev --workspace "${WORKSPACE}" --ignore-scripts --no-audit --no-fund
COPY --from=build /app/services/runtime/dist services/runtime/dist
COPY --from=build /app/services/contracts/dist services/contracts/dist
COPY --from=build /app/${WORKSPACE}/dist ${WORKSPACE}/dist
# Keep only what runs: the root's package.json and node_modules and the three workspaces: no other
# workspace, no symlink to one, no lockfile, and no type declarations, source maps (node runs
# without --enable-source-maps) or build info, here or in node_modules (a third of the operator's
# tree: @kubernetes/client-node ships 28 MB of .d.ts). Then load, from the workspace, every
# dependency it declares: each must be in this production-only tree.
RUN keep="services/runtime services/contracts ${WORKSPACE}" \
 && for ws in $(find . -mindepth 2 -name package.json -not -path './node_modules/*' -printf '%P\n' | xargs -r -n1 dirname); do \
      case " $keep " in *" $ws "*) ;; *) rm -rf "$ws" ;; esac; \
    done \
 && find node_modules -type l ! -exec test -e {} \; -delete \
 && find . -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name '*.tsbuildinfo' \) \
      -exec rm -f {} + \
 && rm -f package-lock.json node_modules/.package-lock.json
WORKDIR /app/${WORKSPACE}
# hadolint ignore=SC2016
RUN node --input-type=module -e ' \
      const { dependencies = {} } = JSON.parse(await (await import("node:fs/promises")).readFile("package.json", "utf8")); \
      for (const name of Object.keys(dependencies)) await import(name); \
      console.log(`prune: ${Object.keys(dependencies).join(", ")} load`); \
    '

############################################################################ tini
# Node.js as a container's first process (PID 1) ignores SIGTERM until it installs a handler, and
# the services install theirs only once Kafka answers: a pod stopped while it waits for Kafka
# would hang for its whole grace period. tini runs as PID 1 and passes the signals on.
FROM ${NODE_IMAGE} AS tini
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini=0.19.0-1+b3 \
 && rm -rf /var/lib/apt/lists/*

############################################################################ runtime
FROM ${NODE_IMAGE} AS runtime
ARG WORKSPACE
ARG PORT
LABEL org.opencontainers.image.title="ordersaga ${WORKSPACE}" \
      org.opencontainers.image.licenses="Apache-2.0"
# HOST: the services listen on 127.0.0.1 unless told otherwise. The chart sets HOST and PORT
# too; these make a plain `docker run -p` work. Nothing is written at run time (logs go to
# stdout), so the root filesystem can be read-only.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=${PORT} \
    ORDERSAGA_WORKSPACE=${WORKSPACE}
COPY --from=tini /usr/bin/tini /usr/bin/tini
# Owned by root, read-only for the user that runs.
COPY --from=prune /app /app
# The exec form of CMD expands no variable, so the workspace is the working directory instead:
# this runs /app/${WORKSPACE}/dist/main.js (node_modules is found in /app).
WORKDIR /app/${WORKSPACE}
# Numeric, so that runAsNonRoot can check it; 65532 as in the chart's securityContext.
USER 65532:65532
EXPOSE ${PORT}
# Instead of the node image's docker-entrypoint.sh (a shell script that execs its arguments).
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/main.js"]
