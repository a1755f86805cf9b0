"""The pipeline process is supervised: restarted when it dies, gone when the service dies."""

import os
import signal
import threading

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.ingest.hj212.frames import SEG_2011, packet
from tests.mqtt_tools import Publisher
from tests.service_process import ServiceProcess, wait_for, write_config

pytestmark = pytest.mark.integration

MN = "010000A8900016F000169DC0"


def decoded(service: ServiceProcess) -> float:
    for family in text_string_to_metric_families(service.metrics()):
        if family.name == "nonsite_ingest_decoded_messages":
            return sum(s.value for s in family.samples if s.name.endswith("_total"))
    return 0.0


def start_service(mosquitto, tmp_path) -> ServiceProcess:
    config = write_config(
        tmp_path / "n.toml", broker_url=mosquitto.url, data_dir=tmp_path / "d", mns=[MN]
    )
    return ServiceProcess.started(config)


def wait_until(predicate, timeout: float = 20.0) -> bool:
    return wait_for(predicate, timeout, every=0.1)


def frames(start: int, n: int):
    return [
        (f"hj212/{MN}", packet(SEG_2011.replace("QN=20261121080000123", f"QN={start + i:017d}")))
        for i in range(n)
    ]


def test_a_killed_pipeline_is_restarted_and_resumes_from_its_checkpoint(mosquitto, tmp_path):
    service = start_service(mosquitto, tmp_path)
    try:
        pub = Publisher(mosquitto.host, mosquitto.port)
        pub.publish_all(frames(0, 100))
        assert wait_until(lambda: decoded(service) >= 100)
        first = service.pipeline_child()
        first.send_signal(signal.SIGKILL)
        assert wait_until(lambda: "pipeline" in service.readiness().get("problems", {}), 10)
        pub.publish_all(frames(100, 100))  # archived while the pipeline is down
        assert wait_until(service.ready, 30)
        second = service.pipeline_child()
        assert second.pid != first.pid
        # The new process starts from the checkpoint: it decodes only what was not decoded.
        assert wait_until(lambda: decoded(service) >= 100)
        assert decoded(service) <= 100 + 1
        pub.close()
    finally:
        assert service.terminate() == 0


def test_the_pipeline_exits_when_the_service_is_killed(mosquitto, tmp_path):
    service = start_service(mosquitto, tmp_path)
    child = service.pipeline_child()
    service.kill()
    assert wait_until(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, 15)
    # A new service on the same data directory starts cleanly (the pipeline lock is free).
    service.start()
    assert service.ready()
    assert service.terminate() == 0
    assert os.path.exists(tmp_path / "d" / "pipeline.lock")


def test_a_stop_signal_to_both_processes_does_not_wait_for_the_dead_pipeline(mosquitto, tmp_path):
    """Ctrl-C in a terminal (or `timeout`) signals the whole process group: the pipeline dies
    at once and will never report that it drained; the service must not wait two minutes for
    it. It resumes from its checkpoint at the next start."""
    service = start_service(mosquitto, tmp_path)
    pub = Publisher(mosquitto.host, mosquitto.port)
    pub.publish_all(frames(0, 50))
    pub.close()
    assert wait_until(lambda: decoded(service) >= 50)
    service.pipeline_child().send_signal(signal.SIGTERM)
    assert service.terminate(timeout=30) == 0  # it used to wait 120 s for "drained"
    assert "the pipeline did not finish decoding" in service.log_text()


def test_a_pipeline_that_dies_once_the_service_is_stopping_is_not_started_again(tmp_path):
    """The race behind a stop signal to the whole process group: the pipeline dies first,
    and the service, stopping, must not start it again only to stop it (it did when its own
    stop came more than the restart's delay later)."""
    from nonsite.config.load import parse_config
    from nonsite.pipeline_process import PipelineProcess

    config = parse_config({"service": {"data_dir": str(tmp_path)}}, "t.toml", env={})
    pipeline = PipelineProcess(config, on_replies=lambda replies: None)
    started: list[bool] = []
    pipeline.start = lambda: started.append(True)  # type: ignore[method-assign]

    class Dead:  # the child, dead: its pipe closed, reaped at once
        exitcode = -15

        def join(self, timeout: float | None = None) -> None:
            return None

    class Closed:
        def recv(self) -> object:
            raise EOFError

        def close(self) -> None:
            return None

    pipeline.stopping()
    exited = threading.Event()
    pipeline._read(Closed(), Dead(), exited)  # type: ignore[arg-type]
    assert exited.is_set()
    assert started == [] and pipeline.restarts == 0 and pipeline.error is None
