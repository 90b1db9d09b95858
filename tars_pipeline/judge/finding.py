"""What every finding is about: one KPI on one service.

`Degradation` and `UnexpectedDrift` extend `KpiFinding`; their JSON records start with the
same six keys (`identity`), so a renderer reads any finding's subject the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from tars_pipeline.config import KpiDefinition


@dataclass(frozen=True)
class KpiFinding:
    kpi: KpiDefinition
    service: str

    @property
    def key(self) -> tuple[str, str]:
        """(service, KPI name), as the drift rows and SLO status are keyed."""
        return (self.service, self.kpi.name)

    def identity(self) -> dict:
        """kpi, kpi_title, service, kind, unit, direction: a record's first keys."""
        return {
            "kpi": self.kpi.name,
            "kpi_title": self.kpi.title,
            "service": self.service,
            "kind": self.kpi.kind,
            "unit": self.kpi.unit,
            "direction": self.kpi.direction,
        }
