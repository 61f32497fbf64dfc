# Redis for the local cluster, from Debian's redis-server (no registry needed: the local cluster
# builds it with podman on its mmdebstrap base, BASE=localhost/gencluster-base:bookworm).
#   hack/images.sh build localhost/gencluster-redis:dev hack/images/redis.Dockerfile
# Real clusters use the public image (docker.io/library/redis:7.2-bookworm, the operator's
# default): the operator runs `redis-server /etc/redis/conf/redis.conf` in either, as uid 999,
# with a read-only root filesystem; the config and the ACL file are mounted by the pod.
ARG BASE=docker.io/library/debian:bookworm-slim
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/* /etc/redis \
 && install -d -m 0755 /etc/redis /etc/redis/conf /etc/redis/auth \
 && install -d -m 0770 -o 999 -g 999 /data
# (Debian's /etc/redis is 2750 redis:redis, closed to uid 999: replaced by open mount points.)
# Same uid as the public image's redis user; the pod sets it too (runAsUser: 999, fsGroup: 999).
USER 999:999
WORKDIR /data
EXPOSE 6379 16379
CMD ["redis-server", "/etc/redis/conf/redis.conf"]
