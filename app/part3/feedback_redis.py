"""Labelled feedback and the shadow answers in Redis (the queue's): the distributed mode, where API
processes and trainers on several machines share no folder (feedback_records.py says what is kept).

    <prefix>:feedback:seq              INCR: the arrival order across all models (SQLite's AUTOINCREMENT)
    <prefix>:feedback:row:<key>        a hash per labelled prediction
    <prefix>:feedback:order:<model>    a sorted set of the model's keys by seq; `labelled:<model>` those
                                       that came with their input
    <prefix>:feedback:input:<model>    their inputs by key (the row's raw bytes), and `input-label:<model>`
                                       their labels: a model's rows are read in two commands
    <prefix>:feedback:models           the models that have feedback
    <prefix>:claim:<what>              SET NX PX: claimed for `min_interval`
    <prefix>:shadow:...                the same shape for the challengers' answers

Each write is one Lua script (the check, the insert and the trim as one step for every client); the
reads that span rows are one too, but for the rows with their inputs (see `labelled_rows`).
"""

import time
from collections.abc import Sequence
from typing import Any

import redis

from app.modelkit import Model
from app.part3.feedback_records import FeedbackStore, LabelledRows, LiveAccuracy, NewFeedback, conflict
from app.part3.shadow_queue import ShadowAnswer
from app.part3.shadow_records import Agreement, Labelled, ShadowRecords

# KEYS: the row, the model's order, its labelled rows, the sequence, the models, its inputs, their
# labels. ARGV: label, model, version,
# predicted, correct, predicted_at, received_at, has input ('1' or ''), input, keep, row prefix, key.
# Returns {0}: the same feedback again; {-1, label}: another label stands; {1, seq}: stored.
RECORD = """
local stored = redis.call('HGET', KEYS[1], 'label')
if stored then
    if stored == ARGV[1] then return {0} end
    return {-1, stored}
end
local seq = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[1], 'seq', seq, 'model', ARGV[2], 'version', ARGV[3], 'predicted', ARGV[4],
    'label', ARGV[1], 'correct', ARGV[5], 'predicted_at', ARGV[6], 'received_at', ARGV[7])
redis.call('ZADD', KEYS[2], seq, ARGV[12])
if ARGV[8] == '1' then
    redis.call('ZADD', KEYS[3], seq, ARGV[12])
    redis.call('HSET', KEYS[6], ARGV[12], ARGV[9])
    redis.call('HSET', KEYS[7], ARGV[12], ARGV[1])
end
redis.call('SADD', KEYS[5], ARGV[2])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[10])
if excess > 0 then
    for _, old in ipairs(redis.call('ZRANGE', KEYS[2], 0, excess - 1)) do
        redis.call('DEL', ARGV[11] .. old)
        redis.call('ZREM', KEYS[2], old)
        redis.call('ZREM', KEYS[3], old)
        redis.call('HDEL', KEYS[6], old)
        redis.call('HDEL', KEYS[7], old)
    end
end
return {1, seq}
"""

# KEYS: the model's order. ARGV: window, row prefix, the left-out seqs. Newest first, per version:
# {version, correct, count, ...} over its newest `window` rows not left out.
LIVE_ACCURACY = """
local left_out = {}
for i = 3, #ARGV do left_out[tonumber(ARGV[i])] = true end
local window = tonumber(ARGV[1])
local versions, counts, sums = {}, {}, {}
local rows = redis.call('ZREVRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #rows, 2 do
    if not left_out[tonumber(rows[i + 1])] then
        local found = redis.call('HMGET', ARGV[2] .. rows[i], 'version', 'correct')
        local version = found[1]
        if version then
            local n = counts[version] or 0
            if n == 0 then table.insert(versions, version) end
            if n < window then
                counts[version] = n + 1
                sums[version] = (sums[version] or 0) + tonumber(found[2])
            end
        end
    end
end
local out = {}
for _, version in ipairs(versions) do
    table.insert(out, version)
    table.insert(out, sums[version])
    table.insert(out, counts[version])
end
return out
"""

# KEYS: the sequence. ARGV: keep, row prefix, order prefix, then 7 per answer: key, model, version,
# predicted, challenger, answer, answered_at. A key already stored is left as it is.
RECORD_SHADOW = """
local keep = tonumber(ARGV[1])
local models = {}
for i = 4, #ARGV, 7 do
    local key, model = ARGV[i], ARGV[i + 1]
    models[model] = true
    if redis.call('EXISTS', ARGV[2] .. key) == 0 then
        local seq = redis.call('INCR', KEYS[1])
        redis.call('HSET', ARGV[2] .. key, 'model', model, 'version', ARGV[i + 2], 'predicted', ARGV[i + 3],
            'challenger', ARGV[i + 4], 'answer', ARGV[i + 5], 'answered_at', ARGV[i + 6])
        redis.call('ZADD', ARGV[3] .. model, seq, key)
    end
end
for model in pairs(models) do
    local order = ARGV[3] .. model
    local excess = redis.call('ZCARD', order) - keep
    if excess > 0 then
        for _, old in ipairs(redis.call('ZRANGE', order, 0, excess - 1)) do
            redis.call('DEL', ARGV[2] .. old)
            redis.call('ZREM', order, old)
        end
    end
end
return 0
"""

# KEYS: the model's shadow order. ARGV: challenger, champion, shadow row prefix, feedback row prefix.
# The answers of `challenger` in shadow of `champion` whose feedback has that version too:
# {feedback seq, champion's answer (the feedback's), challenger's answer, label, ...}.
LABELLED_SHADOW = """
local out = {}
for _, key in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local answer = redis.call('HMGET', ARGV[3] .. key, 'challenger', 'version', 'answer')
    if answer[1] == ARGV[1] and answer[2] == ARGV[2] then
        local feedback = redis.call('HMGET', ARGV[4] .. key, 'version', 'predicted', 'label', 'seq')
        if feedback[1] == answer[2] then
            table.insert(out, feedback[4])
            table.insert(out, feedback[2])
            table.insert(out, answer[3])
            table.insert(out, feedback[3])
        end
    end
end
return out
"""

# KEYS: the model's shadow order. ARGV: challenger, champion, row prefix. {answered, the same as the champion}.
AGREEMENT = """
local answered, same = 0, 0
for _, key in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local found = redis.call('HMGET', ARGV[3] .. key, 'challenger', 'version', 'predicted', 'answer')
    if found[1] == ARGV[1] and found[2] == ARGV[2] then
        answered = answered + 1
        if found[3] == found[4] then same = same + 1 end
    end
end
return {answered, same}
"""


class Keys:
    """The keys of one kind of record: its sequence, a hash per record, a sorted set per model by seq."""

    def __init__(self, prefix: str, kind: str) -> None:
        self.sequence = f"{prefix}:{kind}:seq"
        self.row = f"{prefix}:{kind}:row:"
        self.order = f"{prefix}:{kind}:order:"


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisFeedbackStore(FeedbackStore):
    def __init__(self, client: redis.Redis, keep: int, prefix: str = "workshop", where: str = "Redis") -> None:
        self.client = client
        self.keep = keep
        self.prefix = prefix
        self.where = f"the feedback in {where}"
        self.keys = Keys(prefix, "feedback")
        self.models_key = f"{prefix}:feedback:models"
        self._record = client.register_script(RECORD)
        self._live_accuracy = client.register_script(LIVE_ACCURACY)

    def _labelled(self, model: str) -> str:
        return f"{self.prefix}:feedback:labelled:{model}"

    def _inputs(self, model: str) -> tuple[str, str]:
        return f"{self.prefix}:feedback:input:{model}", f"{self.prefix}:feedback:input-label:{model}"

    def _insert(self, feedback: NewFeedback) -> bool:
        f = feedback
        keys = [
            self.keys.row + f.key,
            self.keys.order + f.model,
            self._labelled(f.model),
            self.keys.sequence,
            self.models_key,
            *self._inputs(f.model),
        ]
        arguments = [
            f.label,
            f.model,
            f.version,
            f.predicted,
            f.correct,
            repr(float(f.predicted_at)),
            repr(time.time()),
            "" if f.input is None else "1",
            f.input or b"",
            self.keep,
            self.keys.row,
            f.key,
        ]
        outcome = self._record(keys=keys, args=arguments)
        if int(outcome[0]) < 0:
            raise conflict(text(outcome[1]))
        return int(outcome[0]) == 1

    def count(self, model: str | None = None) -> int:
        models = [model] if model is not None else sorted(text(name) for name in self.client.smembers(self.models_key))
        if not models:
            return 0
        with self.client.pipeline(transaction=False) as pipe:
            for name in models:
                pipe.zcard(self.keys.order + name)
            return sum(pipe.execute())

    def live_accuracy(self, model: str, window: int, left_out: Sequence[int] = ()) -> dict[int, LiveAccuracy]:
        found = self._live_accuracy(
            keys=[self.keys.order + model], args=[window, self.keys.row, *(int(seq) for seq in left_out)]
        )
        by_version = {
            int(found[i]): LiveAccuracy(int(found[i + 1]) / int(found[i + 2]), int(found[i + 2]), window)
            for i in range(0, len(found), 3)
        }
        return dict(sorted(by_version.items()))

    def labelled_rows(self, model: Model, after: int | None = None, through: int | None = None) -> LabelledRows:
        lowest = "-inf" if after is None else f"({after}"
        highest = "+inf" if through is None else str(through)
        # Not one script: one reading thousands of rows one by one would hold Redis (and the queue) all
        # along. A row trimmed between the two reads is left out, as a read just after the trim would.
        ordered = self.client.zrangebyscore(self._labelled(model.name), lowest, highest, withscores=True)
        rows = []
        if ordered:
            inputs, labels = self._inputs(model.name)
            keys = [key for key, _ in ordered]
            with self.client.pipeline() as pipe:  # MULTI: the inputs and the labels of the same rows
                found_inputs, found_labels = pipe.hmget(inputs, keys).hmget(labels, keys).execute()
            rows = [
                (int(seq), data, text(label))
                for (_, seq), data, label in zip(ordered, found_inputs, found_labels, strict=True)
                if data is not None and label is not None
            ]
        return LabelledRows.of(model, rows)

    def newest_labelled(self, model: str) -> int | None:
        newest = self.client.zrevrange(self._labelled(model), 0, 0, withscores=True)
        return int(newest[0][1]) if newest else None

    def labelled_since(self, model: str, after: int | None) -> int:
        return int(self.client.zcount(self._labelled(model), "-inf" if after is None else f"({after}", "+inf"))

    def claim(self, what: str, min_interval: float) -> bool:
        # The key lives for the interval: while it does, every other caller's SET NX fails.
        if min_interval <= 0:
            return True
        milliseconds = max(1, round(min_interval * 1000))
        return bool(self.client.set(f"{self.prefix}:claim:{what}", "1", nx=True, px=milliseconds))

    def shadow_records(self, keep: int) -> "RedisShadowRecords":
        return RedisShadowRecords(self, keep)

    def close(self) -> None:
        self.client.close()


class RedisShadowRecords(ShadowRecords):
    def __init__(self, feedback: RedisFeedbackStore, keep: int) -> None:
        self.feedback = feedback
        self.keep = keep
        self.client = client = feedback.client
        self.keys = Keys(feedback.prefix, "shadow")
        self._record = client.register_script(RECORD_SHADOW)
        self._labelled = client.register_script(LABELLED_SHADOW)
        self._agreement = client.register_script(AGREEMENT)

    def record(self, answers: list[ShadowAnswer]) -> None:
        if not answers:
            return
        now = repr(time.time())
        arguments: list[Any] = [self.keep, self.keys.row, self.keys.order]
        for a in answers:
            arguments += [a.key, a.model, a.version, a.predicted, a.challenger, a.answer, now]
        self._record(keys=[self.keys.sequence], args=arguments)

    def labelled(self, model: str, challenger: int, champion: int) -> Labelled:
        found = self._labelled(
            keys=[self.keys.order + model], args=[challenger, champion, self.keys.row, self.feedback.keys.row]
        )
        rows = sorted(
            (int(found[i]), text(found[i + 1]), text(found[i + 2]), text(found[i + 3])) for i in range(0, len(found), 4)
        )
        return Labelled([row[1] for row in rows], [row[2] for row in rows], [row[3] for row in rows])

    def agreement(self, model: str, challenger: int, champion: int) -> Agreement:
        answered, same = self._agreement(keys=[self.keys.order + model], args=[challenger, champion, self.keys.row])
        return Agreement(int(answered), int(same) / int(answered) if int(answered) else None)

    def count(self, model: str) -> int:
        return int(self.client.zcard(self.keys.order + model))
