"""Analysis of sequence modules: why a GRU works, measured on the user's own model.

    gradient_flow, step_jacobians     the update gate as a gradient highway (`jacobians`)
    memory_timescales, impulse_response   τ = −1/ln(1 − u) and the measured decay (`timescales`)
    gate_statistics, gate_events      saturation per unit, drops and spikes at single steps (`gates`)
    kalman_comparison, steady_state_gain  the update gate against the Kalman gain (`kalman`)
    fixed_points                      fixed and slow points of the step map (`attractors`)

Each has a plot function beside it in its module.
"""

from grukit.analysis.attractors import FixedPointConfig, FixedPoints, fixed_points, plot_fixed_points
from grukit.analysis.gates import (
                                   GateEvent,
                                   GateStatistics,
                                   gate_events,
                                   gate_scores,
                                   gate_statistics,
                                   plot_gates,
                                   plot_saturation,
)
from grukit.analysis.jacobians import (
                                   GradientFlow,
                                   StepJacobians,
                                   gradient_flow,
                                   plot_gradient_flow,
                                   plot_step_jacobians,
                                   step_jacobians,
)
from grukit.analysis.kalman import KalmanComparison, filter_gains, kalman_comparison, plot_kalman, steady_state_gain
from grukit.analysis.timescales import ImpulseResponse, Timescales, impulse_response, memory_timescales, plot_timescales

__all__ = [
    "FixedPointConfig", "FixedPoints", "GateEvent", "GateStatistics", "GradientFlow", "ImpulseResponse",
    "KalmanComparison", "StepJacobians", "Timescales", "filter_gains", "fixed_points", "gate_events", "gate_scores",
    "gate_statistics", "gradient_flow", "impulse_response", "kalman_comparison", "memory_timescales",
    "plot_fixed_points", "plot_gates", "plot_gradient_flow", "plot_kalman", "plot_saturation",
    "plot_step_jacobians", "plot_timescales", "step_jacobians", "steady_state_gain",
]
