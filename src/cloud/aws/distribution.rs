//! Distribution: the pointers (SSM parameters) that publish an image.

use std::collections::BTreeMap;

use super::{ssm_code, ssm_error, AwsProvider};
use crate::error::Result;

impl AwsProvider {
    /// Every version a pointer has had, oldest first: (version, image id).
    pub fn pointer_history(&self, name: &str) -> Result<Vec<(u64, String)>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..100 {
            let r = self.block(
                self.clients
                    .ssm
                    .get_parameter_history()
                    .name(name)
                    .set_next_token(token.clone())
                    .send(),
            );
            let r = match r {
                Ok(r) => r,
                Err(e) if ssm_code(&e) == "ParameterNotFound" => return Ok(Vec::new()),
                Err(e) => return Err(ssm_error("ssm:GetParameterHistory", e)),
            };
            for p in r.parameters() {
                out.push((p.version.max(0) as u64, p.value.clone().unwrap_or_default()));
            }
            token = r.next_token.clone();
            if token.is_none() {
                break;
            }
        }
        out.sort();
        Ok(out)
    }

    pub(super) fn get_pointer(&self, name: &str) -> Result<Option<String>> {
        match self.block(self.clients.ssm.get_parameter().name(name).send()) {
            Ok(o) => Ok(o.parameter.and_then(|p| p.value)),
            Err(e) if ssm_code(&e) == "ParameterNotFound" => Ok(None),
            Err(e) => Err(ssm_error("ssm:GetParameter", e)),
        }
    }

    pub(super) fn put_pointer(&self, name: &str, image_id: &str) -> Result<u64> {
        if let Ok(o) = self.block(self.clients.ssm.get_parameter().name(name).send()) {
            if let Some(p) = o.parameter {
                if p.value.as_deref() == Some(image_id) {
                    return Ok(p.version.max(0) as u64);
                }
            }
        }
        let out = self
            .block(
                self.clients
                    .ssm
                    .put_parameter()
                    .name(name)
                    .value(image_id)
                    .r#type(aws_sdk_ssm::types::ParameterType::String)
                    .data_type("aws:ec2:image")
                    .description("Published by Bakery")
                    .overwrite(true)
                    .send(),
            )
            .map_err(|e| ssm_error("ssm:PutParameter", e))?;
        Ok(out.version.max(0) as u64)
    }

    pub(super) fn all_pointers(&self) -> Result<BTreeMap<String, String>> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..200 {
            let out = self
                .block(
                    self.clients
                        .ssm
                        .describe_parameters()
                        .set_next_token(token.clone())
                        .max_results(50)
                        .send(),
                )
                .map_err(|e| ssm_error("ssm:DescribeParameters", e))?;
            for p in out.parameters() {
                let is_image = p.data_type.as_deref() == Some("aws:ec2:image");
                if let (Some(n), true) = (p.name.clone(), is_image) {
                    names.push(n);
                }
            }
            token = out.next_token.clone();
            if token.is_none() {
                break;
            }
        }
        let mut found = BTreeMap::new();
        for chunk in names.chunks(10) {
            let out = self
                .block(
                    self.clients
                        .ssm
                        .get_parameters()
                        .set_names(Some(chunk.to_vec()))
                        .send(),
                )
                .map_err(|e| ssm_error("ssm:GetParameters", e))?;
            for p in out.parameters() {
                if let (Some(n), Some(v)) = (p.name.clone(), p.value.clone()) {
                    found.insert(n, v);
                }
            }
        }
        Ok(found)
    }
}
