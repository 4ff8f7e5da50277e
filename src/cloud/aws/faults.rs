//! Power faults for failure-mode experiments, through the EC2 API with waiters: a reboot
//! (RebootInstances) and a stop and start (StopInstances, then StartInstances: on EC2 the
//! instance usually lands on another host).

use super::{api_error, AwsProvider, STOP_TIMEOUT};
use crate::aws::wait::OnSignal;
use crate::cloud::{Instance, PowerAction};
use crate::error::{Error, Result};

/// How long an instance may take to be `running` again.
const START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

impl AwsProvider {
    /// Makes `action` happen to the instance; returns once EC2 reports it running again. The
    /// experiment then waits for the new boot over the transport.
    pub(super) fn power_action(&self, instance: &Instance, action: PowerAction) -> Result<()> {
        let ec2 = &self.clients.ec2;
        let id = &instance.id;
        match action {
            PowerAction::Reboot => {
                self.block(ec2.reboot_instances().instance_ids(id).send())
                    .map_err(|e| api_error("ec2:RebootInstances", e))?;
            }
            PowerAction::StopStart => {
                self.block(ec2.stop_instances().instance_ids(id).send())
                    .map_err(|e| api_error("ec2:StopInstances", e))?;
                self.wait_instance(id, "stopped", STOP_TIMEOUT, OnSignal::Stop)?;
                self.block(ec2.start_instances().instance_ids(id).send())
                    .map_err(|e| api_error("ec2:StartInstances", e))?;
            }
            PowerAction::HardReset => {
                return Err(Error::Config(format!(
                    "the `aws` provider cannot make the fault `hard-reset` (on {id}): EC2 has no power-cycle call; use `reboot` or `stop-start`"
                )))
            }
        }
        self.wait_instance(id, "running", START_TIMEOUT, OnSignal::Stop)
    }
}
