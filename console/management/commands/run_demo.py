import os
import signal
import subprocess
import sys
import threading

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from console.demo import DEMO_SIM_BASE_PORT, DEMO_SIM_METERS, DEMO_SIM_PROFILES
from console.tasks import refresh_dashboards
from gateway_bridge.tasks import dispatch_polling_rounds
from tenancy.schedules import InProcessScheduler, sync_periodic_jobs


class Command(BaseCommand):
    help = (
        "Serve the embedded demo: the meter simulator, the site on 127.0.0.1:PORT and, with no "
        "broker configured, an in-process scheduler for polling rounds and periodic jobs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--sim-base-port",
            type=int,
            default=int(os.environ.get("DEMO_SIM_BASE_PORT", DEMO_SIM_BASE_PORT)),
        )
        parser.add_argument("--no-simulator", action="store_true")

    def handle(self, *args: object, **options: object) -> None:
        # Stopping the demo (Ctrl-C or SIGTERM) must also stop the simulator it started.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        sync_periodic_jobs()
        simulator = None if options["no_simulator"] else self._start_simulator(options)
        scheduler = None
        try:
            if settings.CELERY_TASK_ALWAYS_EAGER:
                started = dispatch_polling_rounds.apply(throw=True).get()
                self.stdout.write(f"First polling round done: {started} shard(s).")
                refresh_dashboards.apply(throw=True)  # the dashboards show that round at once
                scheduler = InProcessScheduler()
                scheduler.start()
                self.stdout.write(
                    "In-process scheduler running the polling rounds and periodic jobs."
                )
            call_command("runserver", f"{options['host']}:{options['port']}", use_reloader=False)
        finally:
            if scheduler is not None:
                scheduler.stop()
            if simulator is not None:
                simulator.terminate()
                simulator.wait(10)

    def _start_simulator(self, options: dict) -> subprocess.Popen:
        command = [
            sys.executable,
            "manage.py",
            "simulate_gateways",
            "--gateways",
            "2",
            "--meters-per-gateway",
            str(DEMO_SIM_METERS),
            "--profiles",
            ",".join(DEMO_SIM_PROFILES),
            "--base-port",
            str(options["sim_base_port"]),
        ]
        process = subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        for line in process.stdout:
            self.stdout.write(f"simulator: {line.rstrip()}")
            if line.startswith("serving"):
                threading.Thread(target=self._forward, args=(process,), daemon=True).start()
                return process
        raise CommandError("the meter simulator did not start; see its output above")

    def _forward(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.stdout.write(f"simulator: {line.rstrip()}")
