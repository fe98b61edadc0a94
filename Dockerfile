# The cutpoint image, used by docker-compose.yml for the orchestrator worker and for the agents beside each mongod.
# It is the Percona Server for MongoDB image plus Node.js and cutpoint: an agent reads its mongod's files as the same
# user (1001) and runs mongod (CUTPOINT_MONGOD_PATH) when a restore starts one. The TypeScript sources run through
# tsx, as in a clone.
ARG PSMDB_IMAGE=percona/percona-server-mongodb:7.0

FROM node:20-bookworm-slim AS app
WORKDIR /opt/cutpoint
COPY package.json package-lock.json ./
# `npm install` from the committed lock installs the locked versions. Not `npm ci`: it rejects a lock that lacks other
# platforms' optional packages (@swc/core-darwin-*), which registry mirrors may not carry (scripts/ensure-deps.mjs).
RUN npm install --omit=dev --no-audit --no-fund
COPY . .

FROM ${PSMDB_IMAGE} AS cutpoint
USER 0
# Node.js from the official image; libstdc++ for it when the base lacks it. `node --version` fails the build if it
# cannot run here.
COPY --from=app /usr/local/bin/node /usr/local/bin/node
RUN (command -v microdnf >/dev/null && microdnf -y install libstdc++ && microdnf clean all || true) \
 && /usr/local/bin/node --version \
 && mkdir -p /backups && chown 1001:0 /backups && chmod 2775 /backups
COPY --from=app --chown=0:0 /opt/cutpoint /opt/cutpoint
ENV CUTPOINT_MONGOD_PATH=/usr/bin/mongod
USER 1001
WORKDIR /opt/cutpoint
ENTRYPOINT ["node", "/opt/cutpoint/bin/cutpoint.js"]
CMD ["--help"]
