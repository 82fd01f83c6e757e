"""Shadow scoring in the service (slow: a seeded store, the app in-process, then two real workers).

Every challenger here is a stored version's graph with its answers moved one class along
(shadow_support.rotated): it never answers as the champion does, so an answer of it reaching a
client could not go unseen."""

import numpy as np
import pytest
from part3_support import API_KEY, copy_store, digit_file, metric, running_service, serving_process, wait_until
from shadow_support import answer_of, publish_from

from app import images
from app.models import mnist, penguins
from app.part3.kept_models import loader_of
from app.part3.shadow_queue import key_of
from app.store import ModelStore

pytestmark = pytest.mark.slow
DIGITS, PENGUINS = mnist.MODEL, penguins.MODEL
MODELS = {"mnist": DIGITS, "penguins": PENGUINS}
KEY = {"X-API-Key": API_KEY}
PENGUIN_ROWS = np.array([[40.3, 195.0], [50.0, 220.0], [46.5, 192.0], [38.1, 181.0], [49.9, 229.0]])


def service_on(folder, seeded_store, **settings):
    models_dir = copy_store(seeded_store, folder / "models")
    options = {"api_key": API_KEY, "shadow_gather_seconds": 0.02, "shadow_min_labels": 1000, **settings}
    return models_dir, running_service(models_dir, trainer=False, **options)


def challenger_of(client, name: str) -> dict | None:
    return client.get("/models/").json()[name]["challenger"]


def wait_for_challenger(client, name: str, version: int) -> None:
    wait_until(lambda: (challenger_of(client, name) or {}).get("version") == version, f"{name} {version} in shadow")


def shadow_answers(client, ids: list[str]) -> dict[str, str]:
    """{prediction key: the challenger's answer} for the ids the challenger has answered so far."""
    with client.app.state.service.monitoring.feedback.connection() as db:
        rows = db.execute("SELECT id, answer FROM shadow_answers").fetchall() if has_table(db) else []
    wanted = {key_of(prediction_id) for prediction_id in ids}
    return {key: answer for key, answer in rows if key in wanted}


def has_table(db) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'shadow_answers'").fetchone() is not None


def infer(client, name: str, rows: np.ndarray, path: str = "") -> dict:
    model = MODELS[name]
    tensor = {"name": model.input.name, "shape": list(rows.shape), "datatype": model.input.datatype}
    response = client.post(f"/v2/models/{name}{path}/infer", json={"inputs": [{**tensor, "data": rows.tolist()}]})
    assert response.status_code == 200, response.text
    return {output["name"]: output for output in response.json()["outputs"]}


def test_the_shadows_answers_never_reach_a_client_on_any_prediction_route(seeded_store, tmp_path):
    models_dir, running = service_on(tmp_path, seeded_store)
    with running as client:
        stores = {name: ModelStore(name, models_dir) for name in ("mnist", "penguins")}
        for model in (DIGITS, PENGUINS):
            assert publish_from(stores[model.name], model, 1, "challenger", rotate=True).number == 2
            wait_for_challenger(client, model.name, 2)
        digits = [digit_file(digit) for digit in (0, 3, 7, 9)]
        pixels = images.decode_digits([content for _, content, _ in digits])
        sent: list[tuple[str, str, np.ndarray, str]] = []  # (model, prediction id, row, what the client got)

        for row in PENGUIN_ROWS:
            answer = client.get("/predict/", params={"bill": row[0], "flipper": row[1]}).json()
            assert answer["version"] == 1
            sent.append(("penguins", answer["prediction_id"], row, answer["result"]))
        for file, row in zip(digits, pixels, strict=True):
            answer = client.post("/predict/", files={"file": file}).json()
            assert answer["version"] == 1
            sent.append(("mnist", answer["prediction_id"], row, answer["result"]))
        batch = client.post("/predict/batch/", files=[("files", file) for file in digits]).json()
        assert batch["version"] == 1
        sent += [
            ("mnist", item["prediction_id"], row, item["result"])
            for item, row in zip(batch["results"], pixels, strict=True)
        ]
        for name, rows, path in (
            ("penguins", PENGUIN_ROWS, ""),
            ("mnist", pixels, ""),
            ("mnist", pixels[:2], "/versions/1"),
        ):
            outputs = infer(client, name, rows, path)
            champion = stores[name].load_serving(1, loader_of(MODELS[name]))
            probabilities = np.reshape(outputs["probabilities"]["data"], (len(rows), -1))
            assert np.allclose(probabilities, champion.probabilities(rows), atol=1e-6)
            ids, labels = outputs["prediction_id"]["data"], outputs["label"]["data"]
            sent += [(name, *entry) for entry in zip(ids, rows, labels, strict=True)]

        for name in ("penguins", "mnist"):
            mine = [entry for entry in sent if entry[0] == name]
            rows = np.stack([row for _, _, row, _ in mine])
            # Every client got the champion's answer...
            assert [got for _, _, _, got in mine] == answer_of(stores[name], MODELS[name], 1, rows)
            # ...and every request was answered in shadow too, by the challenger, differently, and recorded.
            ids = [prediction_id for _, prediction_id, _, _ in mine]

            def every_one_answered(ids=ids):
                found = shadow_answers(client, ids)
                return found if len(found) == len(ids) else None

            recorded = wait_until(every_one_answered, f"the {name} challenger answered every request")
            challenger = answer_of(stores[name], MODELS[name], 2, rows)
            assert [recorded[key_of(prediction_id)] for prediction_id in ids] == challenger
            assert all(shadow != got for shadow, (_, _, _, got) in zip(challenger, mine, strict=True))
        report = wait_until(  # /models/ reads the figures at most once a second
            lambda: (found := challenger_of(client, "penguins"))["answered"] >= len(PENGUIN_ROWS) * 2 and found,
            "the penguin challenger's figures in /models/",
        )
        assert report["agreement"] == 0.0
        assert client.get("/health/ready").json()["models"] == {"penguins": 1, "mnist": 1}


def label_everything(client, store: ModelStore, rounds: int = 1) -> None:
    """Penguin predictions labelled with what version 1 answers."""
    for _ in range(rounds):
        for row, truth in zip(PENGUIN_ROWS, answer_of(store, PENGUINS, 1, PENGUIN_ROWS), strict=True):
            answer = client.get("/predict/", params={"bill": row[0], "flipper": row[1]}).json()
            assert client.post("/feedback/", json={"prediction_id": answer["prediction_id"], "label": truth}).is_success


def test_an_operator_promotes_or_drops_the_challenger(seeded_store, tmp_path):
    models_dir, running = service_on(tmp_path, seeded_store)
    with running as client:
        store = ModelStore("penguins", models_dir)
        assert client.post("/models/penguins/challenger/promote").status_code == 401
        assert client.post("/models/nothing/challenger/promote", headers=KEY).status_code == 404
        refused = client.post("/models/penguins/challenger/drop", headers=KEY)
        assert refused.status_code == 409 and "penguins has no challenger in shadow" in refused.json()["detail"]

        publish_from(store, PENGUINS, 1, "challenger", rotate=True)  # 2
        wait_for_challenger(client, "penguins", 2)
        label_everything(client, store)
        wait_until(lambda: challenger_of(client, "penguins")["n_labels"] == len(PENGUIN_ROWS), "labels paired")
        versions = {entry["version"]: entry for entry in client.get("/models/").json()["penguins"]["versions"]}
        assert versions[2]["status"] == "challenger"
        activate = client.post("/models/penguins/2/activate", headers=KEY)
        assert activate.status_code == 409 and "challenger in shadow" in activate.json()["detail"]

        promoted = client.post("/models/penguins/challenger/promote", headers=KEY)
        assert promoted.status_code == 200, promoted.text
        body = promoted.json()
        assert (body["version"], body["outcome"], body["active"]) == (2, "promoted", 2)
        entry = body["metadata"]["shadow"]
        assert entry["by"] == "an operator" and entry["n_labels"] == len(PENGUIN_ROWS) and entry["accuracy"] == 0.0
        assert client.get("/predict/", params={"bill": 40.3, "flipper": 195}).json()["version"] == 2
        listed = client.get("/models/").json()["penguins"]
        assert listed["active"] == 2 and listed["challenger"] is None and listed["versions"][1]["status"] == "active"

        publish_from(store, PENGUINS, 2, "challenger", rotate=True)  # 3
        wait_for_challenger(client, "penguins", 3)
        dropped = client.post("/models/penguins/challenger/drop", headers=KEY)
        assert dropped.status_code == 200 and dropped.json()["outcome"] == "dropped" and dropped.json()["active"] == 2
        listed = client.get("/models/").json()["penguins"]
        assert listed["challenger"] is None and listed["versions"][2]["status"] == "dropped"
        assert listed["versions"][2]["shadow"]["by"] == "an operator" and store.active() == 2
        refused = client.post("/models/penguins/3/activate", headers=KEY)
        assert refused.status_code == 409 and "was dropped from shadow (dropped by an operator)" in refused.text
        again = client.post("/models/penguins/challenger/drop", headers=KEY)
        assert again.status_code == 409


def test_metrics_show_the_challengers_agreement_and_live_accuracy(seeded_store, tmp_path):
    models_dir, running = service_on(tmp_path, seeded_store)
    with running as client:
        store = ModelStore("penguins", models_dir)
        publish_from(store, PENGUINS, 1, "challenger")  # answers as version 1 does
        wait_for_challenger(client, "penguins", 2)
        label_everything(client, store, rounds=2)
        wait_until(lambda: challenger_of(client, "penguins")["n_labels"] == 2 * len(PENGUIN_ROWS), "labels paired")
        text = client.get("/metrics").text
        series = {"model": "penguins", "version": "2"}
        assert metric(text, "workshop_challenger_agreement", **series) == 1.0
        assert metric(text, "workshop_challenger_live_accuracy", **series) == 1.0
        assert metric(text, "workshop_challenger_champion_accuracy", **series) == 1.0
        assert metric(text, "workshop_challenger_labels", **series) == 2 * len(PENGUIN_ROWS)
        report = challenger_of(client, "penguins")
        assert report["test"]["p_better"] == report["test"]["p_worse"] == 1.0 and "waits for" in report["detail"]


def test_a_full_queue_and_a_failing_challenger_never_fail_a_live_request(seeded_store, tmp_path):
    models_dir, running = service_on(tmp_path, seeded_store, shadow_queue_rows=3)
    with running as client:
        service = client.app.state.service
        store = ModelStore("penguins", models_dir)
        publish_from(store, PENGUINS, 1, "challenger", rotate=True)
        wait_for_challenger(client, "penguins", 2)
        expected = answer_of(store, PENGUINS, 1, PENGUIN_ROWS)

        def predict_all() -> None:
            for row, truth in zip(PENGUIN_ROWS, expected, strict=True):
                answer = client.get("/predict/", params={"bill": row[0], "flipper": row[1]})
                assert answer.status_code == 200 and answer.json()["result"] == truth

        service.shadow.scorer.stop()  # nothing drains the queue now
        predict_all()
        report = challenger_of(client, "penguins")["this_worker"]
        assert report["queued_rows"] == 3 and report["dropped_rows"] == len(PENGUIN_ROWS) - 3

        def broken(rows):
            raise RuntimeError("the challenger's session broke")

        service.kept.challenger("penguins").model.predict = broken
        service.shadow.scorer.score(service.shadow.queue.take(100))  # what the thread would do
        predict_all()
        service.shadow.scorer.score(service.shadow.queue.take(100))
        report = challenger_of(client, "penguins")["this_worker"]
        assert report["failed_rows"] == 6 and report["answered_rows"] == 0
        assert challenger_of(client, "penguins")["answered"] == 0


# -- two real workers -------------------------------------------------------------------------------
NEW_CONNECTION = {"Connection": "close"}


def from_both_workers(service, path: str, accept) -> None:
    seen = set()

    def both():
        response = service.client.get(path, headers=NEW_CONNECTION)
        if accept(response):
            seen.add(int(response.headers["x-worker-pid"]))
        return len(seen) >= 2

    wait_until(both, f"both workers: {path}", step=0.05)


def label_on_both_workers(service, store: ModelStore, n: int) -> None:
    """At least `n` penguin predictions over new connections, labelled with what version 1 answers, and
    more until both workers have answered some: the kernel may hand a run of new connections to one
    worker (40 in a row once in CI), so a fixed count cannot promise both."""
    truth = answer_of(store, PENGUINS, 1, PENGUIN_ROWS)
    pids: set[int] = set()
    labelled = 0

    def label_one() -> bool:
        nonlocal labelled
        row, label = PENGUIN_ROWS[labelled % len(PENGUIN_ROWS)], truth[labelled % len(PENGUIN_ROWS)]
        response = service.client.get("/predict/", params={"bill": row[0], "flipper": row[1]}, headers=NEW_CONNECTION)
        pids.add(int(response.headers["x-worker-pid"]))
        feedback = {"prediction_id": response.json()["prediction_id"], "label": label}
        assert service.client.post("/feedback/", json=feedback, headers=NEW_CONNECTION).is_success
        labelled += 1
        return labelled >= n and len(pids) == 2

    wait_until(label_one, "both workers answered labelled predictions", step=0)


def test_the_labels_drop_a_worse_challenger_and_promote_a_better_one_on_every_worker(seeded_store, tmp_path):
    models_dir = copy_store(seeded_store, tmp_path / "models")
    env = {
        "WORKSHOP_SHADOW_MIN_LABELS": "20",
        "WORKSHOP_SHADOW_MAX_LABELS": "200",
        "WORKSHOP_SHADOW_CHECK_INTERVAL": "0.3",
        "WORKSHOP_SHADOW_GATHER_SECONDS": "0.02",
    }
    with serving_process(models_dir, workers=2, env=env) as service:
        store = ModelStore("penguins", models_dir)

        def in_shadow(version: int):
            return lambda response: (response.json()["penguins"]["challenger"] or {}).get("version") == version

        publish_from(store, PENGUINS, 1, "challenger", rotate=True)  # 2: worse than version 1
        from_both_workers(service, "/models/", in_shadow(2))
        label_on_both_workers(service, store, 40)
        wait_until(lambda: "shadow" in store.get(2).metadata, "the labels decide about version 2")
        assert store.get(2).metadata["shadow"]["outcome"] == "dropped" and store.active() == 1
        from_both_workers(service, "/models/", lambda response: response.json()["penguins"]["challenger"] is None)

        publish_from(store, PENGUINS, 1, "promoted", rotate=True)  # 3: the champion gone wrong
        publish_from(store, PENGUINS, 1, "challenger")  # 4: right where it is wrong
        from_both_workers(service, "/models/", in_shadow(4))
        label_on_both_workers(service, store, 40)
        wait_until(lambda: "shadow" in store.get(4).metadata, "the labels decide about version 4")
        entry = store.get(4).metadata["shadow"]
        assert entry["outcome"] == "promoted" and entry["by"] == "the live labels" and entry["accuracy"] == 1.0
        assert entry["champion"] == 3 and entry["champion_accuracy"] == 0.0 and store.active() == 4
        from_both_workers(service, "/health/ready", lambda response: response.json()["models"]["penguins"] == 4)
        assert service.log.read_text().count("version 4 promoted by the live labels") == 1, "decided more than once"
