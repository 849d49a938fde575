"""The planner: replicas sized from a capacity model and a forecast over the node lead time.

Replicas needed = offered load ÷ what one replica sustains within the SLO (`core.capacity`, the
engine's model corrected online). The load's upper envelope is forecast over H = node lead time +
replica start (`core.forecast`, lead times learned in `core.leadtime`), and the count asked for
now is what H needs, so nodes are asked for (as spare nodes) before the load arrives;
replicas starting or Pending are part of the count, so capacity on its way is never asked twice.
A scale-down goes no lower than the highest plan of the last DOWN_WINDOW_S, waits while e2e latency
is near its SLO (E2E_HOLD), and removes only Pending replicas and whole nodes' worth (`core.nodes.emptying`); a GPU left free on a node that
already runs a replica (billed whole whatever it runs) is filled once every replica asked for is
ready and no node is being given back (`core.nodes.unfilled`). A
safety net stays for surprises: TTFT over the SLO or a long queue, with nothing on its way, adds
half the ready replicas at once. Scale to and from zero (min_replicas 0) are KEDA's steps, as in
the reactive rules (`rules.zero_step`); without a capacity model or a load reading those rules decide.
This is swell's default policy (`swell`; `planner` is its earlier name).
"""

from __future__ import annotations

from dataclasses import replace

from swell import recipe
from swell.core import capacity, forecast, leadtime, load, nodes, snapshot
from swell.core import decision as decision_mod
from swell.core.policies import plan_state, rules, schedule, steps

NAME = "swell"  # the default policy; recipes may also name it "planner" (its name before)
DRAIN_S = 120.0  # a queue seen now is planned to drain within this time (at most the e2e SLO where
# nothing is shed: every later request waits behind it; 20 s instead of 120 on the diurnal day, which
# sheds at its deadline, cost 2.5 GPU-hours and saved no request)
E2E_MARGIN = 1.0  # the capacity model moves up only while e2e at the SLO's percentile is within this share of its SLO
QUEUE_SATURATED = 2.0  # waiting requests per ready replica at which the replicas serve at full throughput
# (what they serve then corrects the capacity model upward, `capacity.correct`) and the mix read no
# longer shows the mix that arrives: requests shed at the deadline finish (aborted) with no tokens, and
# long prompts are the ones shed (black-friday's surge read 464/132 tokens in/out for an 850/210 mix: a
# replica's modelled capacity doubled and the load in replicas halved, then "rose" as a ramp when capacity came)
QUEUE_ALARM = 16.0  # waiting requests per ready replica that set off the safety net
SETTLE_S = 120.0  # after a shortage or new ready replicas, what replicas serve says nothing of the model
# for this long: new replicas complete their first requests only after a few e2e times, and a backlog's
# latency stays in the TTFT window (black-friday's plateau lowered the model to x0.89 right after its surge)
SPARE_HOLD_S = 60.0  # a spare node is bought for a need the plan has kept this long, not one tick's
SILENCE_HOLD = 8.0  # lead times a sudden silence holds the replicas it found: no request at all for a
# minute or more, from a load that needed them, is an outage upstream as often as the end of demand,
# and an outage ends with the load it stopped, at once (ServeGen m-small's days 10-11: the trace's
# 10-70-minute gaps; the planner scaled to 2 in the 70-minute one and met its return with them)
SILENCE_EXPECTED = 10.0  # ... after minutes that had this many requests a minute (Poisson: 1 in 22,000
# such minutes is empty by chance)
E2E_HOLD = 0.9  # no scale-down while e2e at the SLO's percentile is above this share of its SLO: the
# replicas are barely meeting it, whatever the capacity model says (it sizes a batch for the mean answer,
# and a tight e2e SLO is set by the tail: the gpt2 example's 40-minute plateau went 3 -> 2 replicas at
# minute 16, 96.1 -> 94.2 %; the scorecard moved by at most 0.1 GPU-h; 0.8 cost the diurnal day 4 GPU-h)
DOWN_WINDOW_S = 180.0  # a scale-down goes no lower than the highest plan of this window (the HPA's
# scale-down stabilization): a ramp forecast that lapses a minute after it fired is no reason to give
# back what it asked for (servegen-busy: 14 -> 12 at minute 129, then a burst at 131 met 12); at most
# the lead time H: on one machine, where a replica is back in seconds, a minute is not held for it


def sustained(
    asks: tuple[tuple[float, int], ...], now: float, want: int
) -> tuple[int, tuple[tuple[float, int], ...]]:
    """(spare nodes to keep, asks to remember): the least the plan asked over the last SPARE_HOLD_S
    (a forecast spike of one tick buys no node; less is given back at once); 0 until the asks span
    SPARE_HOLD_S."""
    kept = [a for a in asks if a[0] > now - SPARE_HOLD_S]
    older = [a for a in asks if a[0] <= now - SPARE_HOLD_S]
    window = ([older[-1]] if older else []) + kept + [(now, want)]
    return (min(n for _, n in window) if older else 0), tuple(window)


def drain_s(slo: recipe.SLO) -> float:
    """How soon a queue is planned to drain: DRAIN_S, or within the e2e SLO where requests are
    never shed (no `slo.deadline_s`): a backlog then delays every request that comes after it."""
    if slo.deadline_s is None and slo.e2e_s is not None:
        return min(DRAIN_S, slo.e2e_s)
    return DRAIN_S


def backlog(ld: load.Load, arrived: float, horizon_s: float, deadline_s: float | None) -> float:
    """The queue `horizon_s` from now (when the capacity asked for is ready): today's, grown by
    what arrives beyond what is served; where requests are shed at `deadline_s`, at most that many
    seconds of arrivals."""
    q = ld.queued + max(0.0, arrived - (ld.served_rps or 0.0)) * horizon_s
    return q if deadline_s is None else min(q, arrived * deadline_s)


def stabilized(
    plans: tuple[tuple[float, int], ...], now: float, plan: int, window_s: float = DOWN_WINDOW_S
) -> tuple[int, tuple[tuple[float, int], ...]]:
    """(the count a scale-down may go to, plans to remember): the highest plan of the last
    `window_s`, this one included; only what can still be the window's highest is remembered
    (a plan equal to or below a later one never is)."""
    kept = [p for p in plans if p[0] > now - window_s and p[1] > plan]
    return max([plan, *(n for _, n in kept)]), (*kept, (now, plan))


def initial(rec: recipe.Recipe) -> plan_state.PlanState:
    return plan_state.PlanState(lead=leadtime.LeadTimes.of(rec.node_pool))


def _fallback(
    rec: recipe.Recipe, snap: snapshot.Snapshot, state: steps.State, why: str
) -> tuple[decision_mod.Decision, steps.State]:
    d, state = rules.reactive(rec, snap, state, NAME)
    return replace(d, policy=NAME, reason=f"{why}: the reactive rules decide; {d.reason}"), state


def _alarm(rec: recipe.Recipe, snap: snapshot.Snapshot, queued: float, ttft: tuple[str, float] | None) -> str:
    """Why the reactive safety net fires ('' when it does not): TTFT over the SLO, or a queue of
    more than QUEUE_ALARM requests per ready replica."""
    ready = max(1, snap.ready)
    if queued > QUEUE_ALARM * ready:
        return f"queue {queued:g} > {QUEUE_ALARM:g} per ready replica"
    slo, got = rec.slo.ttft_s, ttft
    if slo is not None and got is not None and got[1] > slo:
        return f"{got[0]} {got[1]:.2f} s > SLO {slo:g} s"
    return ""


def _ttft(rec: recipe.Recipe, snap: snapshot.Snapshot) -> tuple[str, float] | None:
    """(signal name, value) of the recipe's TTFT quantile signal this tick, if it has one with a value."""
    for s in rec.autoscaling.signals:
        if s.kind == "histogram_quantile" and s.metric and "time_to_first_token" in s.metric:
            r = snap.reading(s.name)
            if r.ok and r.value is not None:
                return s.name, r.value
    return None


def _latency_ok(
    rec: recipe.Recipe, snap: snapshot.Snapshot, ttft: tuple[str, float] | None, e2e_s: float | None
) -> bool | None:
    """TTFT within half the SLO (the margin the reactive rules keep) and end to end at the SLO's
    percentile within E2E_MARGIN of its SLO (long answers make the tail, not the mean, the limit;
    a 95 % SLO is not held to the 99th percentile, nor a 99.9 % one let off at it); None: nothing
    to judge by."""
    if snap.ready == 0:
        return None
    checks = []
    got, slo = ttft, rec.slo.ttft_s
    if got is not None and slo is not None:
        checks.append(got[1] <= slo / 2)
    if e2e_s is not None and rec.slo.e2e_s is not None:
        checks.append(e2e_s <= E2E_MARGIN * rec.slo.e2e_s)
    return all(checks) if checks else None


def _e2e_near_slo(slo: recipe.SLO, e2e_s: float | None) -> str:
    """Why e2e latency holds the replicas ('' when it does not): at the SLO's percentile above
    E2E_HOLD of the e2e SLO."""
    if e2e_s is None or slo.e2e_s is None or e2e_s <= E2E_HOLD * slo.e2e_s:
        return ""
    return f"e2e p{slo.percentile:g} {e2e_s:.3g} s is above {E2E_HOLD:.0%} of its SLO ({slo.e2e_s:g} s)"


def _lead_words(lead: leadtime.LeadTimes) -> str:
    if not lead.new_nodes:
        return f"replica start {lead.warm_replica_s:.0f} s"
    return f"node {lead.node_s:.0f} s + replica {lead.cold_replica_s:.0f} s"


def _waiting(snap: snapshot.Snapshot) -> str:
    """Demand at zero replicas in the planner's own reads ('' when none): requests the gateway
    holds in its buffer or answered meanwhile. A service at zero wakes on them whatever its
    signals, which an engine's series cannot be at zero."""
    if snap.current != 0:
        return ""
    ld = load.read(snap)
    if ld.queued > 0:
        return f"{ld.queued:.0f} request(s) waiting at the gateway"
    if ld.answered_rps:
        return f"{ld.answered_rps:.2g} request(s)/s answered at the gateway with no replica"
    return ""


def decide(
    rec: recipe.Recipe, snap: snapshot.Snapshot, state: steps.State
) -> tuple[decision_mod.Decision, steps.State]:
    prof = snap.capacity
    if prof is None:
        return _fallback(rec, snap, state, "no capacity model for this engine")
    # KEDA's part, as the reactive rules do it: activation from zero, and to zero after the cooldown
    # (min_replicas 0); a signal without value is no evidence of idleness
    b = schedule.bounds(rec, snap.calendar_now)
    early, state = rules.zero_step(rec, snap, state, rules.proposals(rec, snap), b, NAME, waiting=_waiting(snap))
    if early is not None:
        return early, state
    ps = state.plan or initial(rec)
    lead, _ = leadtime.learn(
        ps.lead, snap, since=ps.history.first if ps.history.first is not None else snap.now
    )
    horizon = lead.horizon_s
    now = snap.now
    ld = load.read(snap)
    drain = drain_s(rec.slo)
    offered = ld.offered(drain)
    if offered is None and snap.ready == 0:
        offered = ld.queued / drain if ld.queued > 0 else None
    if offered is None:
        d, state = _fallback(rec, snap, state, "no load reading yet")
        return d, replace(state, plan=replace(ps, lead=lead))
    # what the mix counters have seen: nothing before the first decision (servegen-busy's first
    # seconds read 9,588 prompt tokens a request, prompts counted as admitted over a few completions,
    # and weighed as a whole window planned 9 replicas for 6 that served it: 41.8 -> 40.2 GPU-h)
    seen = 0.0 if ps.history.first is None else min(load.MIX_WINDOW_S, now - ps.history.first)
    mix = capacity.mix_of(prof, ld.mix_rps, ld.prompt_tps, ld.generation_tps, seen_s=max(seen, 0.0))
    ready = max(1, snap.ready)
    saturated = ld.queued >= QUEUE_SATURATED * ready
    mix_note = ""
    if saturated and ps.mix is not None:  # the mix last read while the replicas kept up
        mix_note = f"; mix held at {ps.mix.input_tokens:.0f}/{ps.mix.output_tokens:.0f} while saturated"
        mix = ps.mix
    target_u = rec.autoscaling.target_utilization
    nominal = capacity.rps(prof, mix, rec.slo.e2e_s, target_u)
    ttft = _ttft(rec, snap)  # the recipe's TTFT quantile this tick: judged by the correction and the safety net
    short = snap.ready < offered / (nominal * ps.factor)
    unsettled = ps.unsettled_until
    if short or (ps.last_ready is not None and snap.ready > ps.last_ready):
        unsettled = now + SETTLE_S
    factor, note = capacity.correct(
        ps.factor,
        served_per_replica=(ld.served_rps or 0.0) / ready,
        modelled=nominal,
        queued_per_replica=ld.queued / ready,
        latency_ok=_latency_ok(rec, snap, ttft, ld.e2e_at_slo_s),
        undersized=short or (unsettled is not None and now < unsettled),
        saturated=saturated and ld.served_by_engine,
        saturated_share=capacity.saturated_share(prof, target_u),
    )
    per = nominal * factor
    # the forecast learns arrivals: served plus the queue's growth (a backlog drained fast is not
    # demand to hold for H, and a queue building is demand the replicas could not serve)
    arrived = offered
    if ld.answered_rps is not None and snap.ready > 0:
        arrived = ld.answered_rps
        if ps.last_queue is not None and now > ps.last_queue[0]:
            arrived = max(0.0, arrived + (ld.queued - ps.last_queue[1]) / (now - ps.last_queue[0]))
    backlog_note, since = "", now if ps.saturated_since is None else ps.saturated_since
    if saturated:  # what replicas serve is what they can, not what comes: plan for what arrives,
        # and for the backlog the lead time leaves to drain (toy surge: 54 -> 83 % on seed 0); the
        # queue grows until what was asked when it began is ready: over the rest of H, not a whole
        # H from each tick (that compounds: toy surge seed 5, 0.631 -> 0.528 GPU-h, same attainment)
        left = backlog(ld, arrived, max(0.0, horizon - (now - since)), rec.slo.deadline_s)
        if arrived + left / drain > offered:
            offered = arrived + left / drain
            backlog_note = f"{arrived:.2f} req/s arriving, {left:.0f} queued when capacity comes, drained in {drain:g} s"
    units = offered / nominal  # replicas the load needs at the engine's modelled capacity
    history = forecast.observe(ps.history, now, arrived / nominal)
    fc = forecast.forecast(history, now, horizon)
    quiet = forecast.silent(history, now) if offered <= 0 and ld.queued <= 0 else None
    silence = None  # a silence where a minute without requests was unlikely (not a service with none yet,
    # nor one so quiet that an empty minute is chance)
    before = 0.0 if quiet is None else forecast.level_before(history, quiet) * nominal * forecast.MINUTE
    if quiet is not None and (ps.silence is not None or before >= SILENCE_EXPECTED):
        silence = ps.silence or (quiet, snap.current)
    held = silence[1] if silence is not None and now - silence[0] < SILENCE_HOLD * horizon else 0
    need_now = steps.ceil(units / factor)
    need_ahead = steps.ceil(fc.value / factor)
    # a scheduled floor within H (and the spare-node hold and a tick: a replica starts on its node
    # at the first tick after the node is ready): its nodes are asked for now
    soon = schedule.bounds(rec, snap.calendar_now + horizon + SPARE_HOLD_S + rec.autoscaling.polling_interval_s)
    known = soon.lo
    plan = max(need_now, need_ahead, known)
    props = [
        decision_mod.Proposal(signal="planner:load", value=offered, target=per, replicas=need_now,
                              note=f"{ld.source}, queue {ld.queued:g}" + (f"; {backlog_note}" if backlog_note else "")),
        decision_mod.Proposal(signal="planner:forecast", value=fc.value * nominal, target=per, replicas=need_ahead,
                              note=f"{fc.which} over {horizon:.0f} s"),
    ]  # fmt: skip
    panicking, surge, alarm = False, 0, _alarm(rec, snap, ld.queued, ttft)
    if alarm and snap.starting + snap.pending == 0:  # a surprise, and nothing on its way yet
        panicking = True
        surge = snap.current + max(1, snap.ready // 2)
        props.append(
            decision_mod.Proposal(signal="safety net", value=None, target=0.0, replicas=surge, note=alarm)
        )
        plan = max(plan, surge)
    lo, hi = max(b.lo, 1), b.hi
    target = steps.clamp(plan, lo, hi)
    bound: decision_mod.BoundBy = (
        "panic" if panicking and plan > max(need_now, need_ahead, known) else "metrics"
    )
    if target != plan:
        bound = schedule.which(b, "max" if target < plan else "min")
    elif known > max(need_now, need_ahead) and known == plan:
        bound = "schedule" if soon.floor_raised else "min"  # a window's floor, or min_replicas itself
    ahead, gpr, why = target, rec.resources.gpus, ""
    buys_nodes = gpr > 0 and bool(snap.nodes) and lead.new_nodes  # one machine has no nodes to buy
    if buys_nodes and target > snap.current:
        # nodes ahead: replicas go where a node is ready (or its placeholder yields); what the plan
        # needs beyond that waits as spare nodes, not as Pending replicas, and fills them once ready
        must = steps.clamp(max(need_now, surge), lo, hi)
        now_target = max(snap.current, must, min(target, nodes.room(snap.nodes, snap.replicas, gpr)))
        if now_target < target:
            why = f"{target - now_target} more once spare nodes are ready"
            target = now_target
    desired = target
    partial = any(snap.reading(name).partial for name in load.NAMES)
    window = min(DOWN_WINDOW_S, horizon)
    # a silence's hold is remembered as a plan: it outlasts the silence by the window, while the load is read back
    floor, plans = stabilized(ps.recent_plans, now, max(target, held), window)
    if target < snap.current:
        young = history.first is None or now - history.first < horizon
        if floor >= snap.current:  # the window's highest plan, or the replicas a silence holds
            desired, bound = snap.current, "stabilization"
            why = f"no scale-down below the highest plan of the last {window:.0f} s ({floor})"
            if silence is not None and held >= snap.current:
                why = (f"no request since {(now - silence[0]) / 60:.0f} min ago: the {held} replicas held up to "
                       f"{SILENCE_HOLD:g} H ({SILENCE_HOLD * horizon / 60:.0f} min), as a load that stops at once "
                       "comes back at once")  # fmt: skip
        elif partial or alarm:  # an alarm holds the count even with capacity on its way: scaling
            # down what the safety net just added would have it fire again at the next tick
            desired, bound = snap.current, "no_data" if partial else "panic"
            why = "no scale-down now" + ("" if partial else f": {alarm}")
        elif near := _e2e_near_slo(rec.slo, ld.e2e_at_slo_s):
            desired, bound, why = snap.current, "stabilization", f"no scale-down: {near}"
        elif young:  # the envelope needs H of history before it can say a peak will not come back
            desired, bound = snap.current, "stabilization"
            why = f"no scale-down before {horizon:.0f} s of load history"
        else:
            keep = min(snap.pending, nodes.coming(snap.nodes, rec.resources.gpus))
            to = max(target, floor)
            take, emptied = nodes.emptying(snap.replicas, snap.current - to, keep_pending=keep)
            desired = snap.current - take
            if to > target:
                bound = "stabilization"
                why = (f"the {held} replicas held through a silence" if held == to
                       else f"the highest plan of the last {window:.0f} s: {to}")  # fmt: skip
            if take < snap.current - to:
                bound = "capacity"
                why = (f"removing {snap.current - to} would empty no more nodes: remove {take} "
                       f"({emptied} node(s) emptied)")  # fmt: skip
                if keep:
                    why += f"; {keep} Pending kept for the node(s) already coming"
            elif emptied:
                why += ("; " if why else "") + f"{emptied} node(s) emptied"
    if buys_nodes and desired >= snap.current == snap.ready:
        # a GPU of a node already billed serves for nothing: fill it (servegen-busy's calm first
        # hour held 7 replicas on 4 nodes; the 8th met its first burst: 759 -> 493 misses, 40.9 ->
        # 40.3 GPU-h); only once every replica asked for is ready, so none is counted twice (one
        # starting, Pending, or not yet created may be the one meant for that GPU)
        fill = min(hi, snap.current + nodes.unfilled(snap.nodes, snap.replicas, gpr))
        if fill > desired:
            why = (why + "; " if why else "") + f"{fill - desired} free GPU(s) of nodes already billed filled"
            desired = fill
    nodes_planned = nodes.nodes_for(ahead, gpr, rec.node_pool.gpus) if gpr > 0 else 0
    spare, asks = None, ps.spare_asks  # None: the recipe's headroom_nodes
    if buys_nodes:
        used = nodes.nodes_for(desired, gpr, rec.node_pool.gpus)
        held, asks = sustained(asks, now, max(0, nodes_planned - used))
        spare = max(rec.autoscaling.headroom_nodes, held)
    utilization_note = "" if target_u is None else f" at {target_u:g} of its throughput"
    reason = (
        f"load {offered:.2f} req/s ({mix.input_tokens:.0f}/{mix.output_tokens:.0f} tokens in/out)"
        + (f" (saturated: {backlog_note})" if backlog_note else "") + ", "
        f"{per:.2f} req/s per replica ({prof.source} ×{factor:.2f}{utilization_note}); forecast {fc.value * nominal:.2f} req/s "
        f"over H {horizon:.0f} s ({fc.which}; {_lead_words(lead)}); "
        f"plan {plan} replicas" + (f" on {nodes_planned} node(s)" if gpr > 0 else "") + f" -> {desired} ({bound}"
        + (f": {why}" if why else "")
        + ")"
        + (f"; {spare} spare node(s) kept" if spare else "")
        + (f"; {note}" if note else "")
        + mix_note
    )
    d = decision_mod.Decision(
        t=now,
        policy=NAME,
        current=snap.current,
        desired=desired,
        bound_by=bound,
        reason=reason,
        proposals=tuple(props),
        details={
            "load_rps": offered,
            "forecast_rps": fc.value * nominal,
            "capacity_rps": per,
            "capacity_factor": factor,
            "lead_s": horizon,
            "replicas_planned": plan,
            "nodes_planned": nodes_planned,
        },
        spare_nodes=spare,
    )
    new = replace(ps, lead=lead, history=history, factor=factor, recent_plans=plans, mix=mix,
                  last_queue=(now, ld.queued), spare_asks=asks, unsettled_until=unsettled,
                  last_ready=snap.ready, saturated_since=(since if saturated else None),
                  silence=silence)  # fmt: skip
    return d, replace(state, plan=new)
