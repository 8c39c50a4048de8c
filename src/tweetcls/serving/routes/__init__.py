"""The service's routes, one ``APIRouter`` per area: predictions, health, metrics, drift, page."""
