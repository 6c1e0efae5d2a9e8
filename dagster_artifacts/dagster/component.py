"""``ArtifactsComponent``: the store, artifacts from outside Dagster, sensors and verify checks
declared in a ``defs.yaml`` (Dagster Components; ``dg list defs`` shows what it builds)::

    type: dagster_artifacts.dagster.ArtifactsComponent
    attributes:
      store:
        project: bike-sharing
        database: "{{ env.DAGSTER_ARTIFACTS_DATABASE }}"
      external:
        group_name: outside_dagster
      sensors:
        - artifact: bike-model
          alias: production
          job: deploy_model
      checks:
        assets: [bike_rides, bike_features]
        external: true
"""

from typing import Any

import dagster as dg

from dagster_artifacts.dagster.checks import build_artifact_checks
from dagster_artifacts.dagster.external import external_artifact_specs
from dagster_artifacts.dagster.io_manager import ArtifactsIOManager
from dagster_artifacts.dagster.resource import ArtifactsResource
from dagster_artifacts.dagster.sensors import build_artifact_sensor


class StoreModel(dg.Resolvable, dg.Model):
    """Where artifacts live; empty fields fall back to ``DAGSTER_ARTIFACTS_*`` and defaults."""

    root: str | None = None
    database: str | None = None
    entity: str | None = None
    project: str | None = None
    storage_options: dict[str, Any] = {}
    #: The artifact browser's base URL: materializations then link to their version's page.
    ui_url: str | None = None

    def resource(self) -> ArtifactsResource:
        return ArtifactsResource(
            root=self.root or None,
            database=self.database or None,
            entity=self.entity or None,
            project=self.project or None,
            storage_options=dict(self.storage_options),
            ui_url=self.ui_url or None,
        )


class ExternalModel(dg.Resolvable, dg.Model):
    """Artifacts logged outside Dagster, as asset specs (``external_artifact_specs``)."""

    names: list[str] | None = None
    key_prefix: list[str] = []
    group_name: str | None = None


class SensorModel(dg.Resolvable, dg.Model):
    """One ``build_artifact_sensor``; ``job`` is a job's name, ``asset_key`` a user string."""

    artifact: str
    alias: str | None = None
    job: str | None = None
    asset_key: str | None = None
    minimum_interval_seconds: int = 30
    name: str | None = None
    running: bool = False


class ChecksModel(dg.Resolvable, dg.Model):
    """``artifact_verified`` checks on these asset keys (``a/b`` strings), and with ``external``
    on every external artifact the component declares."""

    assets: list[str] = []
    external: bool = True
    blocking: bool = False


class ArtifactsComponent(dg.Component, dg.Resolvable, dg.Model):
    """Declares an artifact store for Dagster: its IO manager and resource, the artifacts logged
    outside Dagster as assets, sensors on versions and aliases, and verify checks."""

    store: StoreModel = StoreModel()
    io_manager_key: str | None = "io_manager"
    resource_key: str | None = "artifacts"
    external: ExternalModel | None = None
    sensors: list[SensorModel] = []
    checks: ChecksModel | None = None

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        store = self.store.resource()
        resources: dict[str, Any] = {}
        if self.io_manager_key:
            resources[self.io_manager_key] = ArtifactsIOManager(store=store)
        if self.resource_key:
            resources[self.resource_key] = store
        specs: list[dg.AssetSpec] = []
        if self.external is not None:
            specs = external_artifact_specs(
                store,
                self.external.names,
                key_prefix=self.external.key_prefix or None,
                group_name=self.external.group_name,
            )
        sensors = [
            build_artifact_sensor(
                sensor.artifact,
                store=store,
                alias=sensor.alias,
                job=sensor.job,
                asset_key=sensor.asset_key,
                minimum_interval_seconds=sensor.minimum_interval_seconds,
                name=sensor.name,
                default_status=(
                    dg.DefaultSensorStatus.RUNNING
                    if sensor.running
                    else dg.DefaultSensorStatus.STOPPED
                ),
            )
            for sensor in self.sensors
        ]
        checks: list[dg.AssetChecksDefinition] = []
        if self.checks is not None:
            targets: list[Any] = list(self.checks.assets)
            if self.checks.external:
                targets.extend(specs)
            if targets:
                checks = build_artifact_checks(targets, store=store, blocking=self.checks.blocking)
        return dg.Definitions(
            assets=specs, sensors=sensors, asset_checks=checks, resources=resources
        )
