# One image with every binary of the stack; docker-compose.yml picks the
# command per service. Debian 12 packages only, as on the build machines.
FROM debian:12 AS build
WORKDIR /src
COPY scripts/setup-deps.sh scripts/setup-deps.sh
RUN bash scripts/setup-deps.sh --build-only
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRMON_BUILD_TESTS=OFF \
      -DRMON_BUILD_BENCH=OFF \
 && cmake --build /build -j"$(nproc)" \
 && cmake --install /build --prefix /opt/rmon

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libzmq5 libspdlog1.10 libfmt9 \
      libprometheus-cpp-core1.0 libcivetweb1 libabsl20220623 libsqlite3-0 libpqxx-6.4 libxxhash0 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 999 rmon \
 && useradd --system --uid 999 --gid 999 --no-create-home rmon \
 && mkdir /data /keys && chown rmon /data /keys && chmod 0700 /keys
# A named volume mounted on /data or /keys starts as a copy of this folder
# (owned by rmon): docker-compose.yml's one-shot `keys` service writes the
# CurveZMQ keys into /keys as rmon, and the services (rmon too) read them.
COPY --from=build /opt/rmon/bin/ /usr/local/bin/
# Numeric, so that Kubernetes can check runAsNonRoot (deploy/kubernetes/); 999,
# the uid useradd --system gave before, so existing volumes stay readable.
USER 999:999
# /metrics (9464-9466) listens on the container's loopback unless
# RMON_METRICS_ADDRESS says otherwise (docker-compose.yml sets 0.0.0.0:<port>
# with curve; with security off that also needs RMON_INSECURE_LISTEN=true).
EXPOSE 5555 5556 5557 5558 5559 5560 5561 9464 9465 9466 8080
CMD ["runner-monitor"]
