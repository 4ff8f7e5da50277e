//! The bake stage: builder instance from the source image → provisioners → image.

use std::time::{Duration, Instant};

use crate::cloud::{
    Image, Instance, LaunchRequest, Role, Tags, COMMIT_TAG, RUN_ID_TAG, STATUS_TAG,
};
use crate::config::template;
use crate::error::{Error, Result};
use crate::progress::{self, Spinner};
use crate::run::Run;
use crate::transport::{shell_quote, Transport};

pub use crate::cloud::SOURCE_TAG;

/// Bakes the pipeline's image and returns it; the builder is gone when this returns.
pub fn bake(run: &Run) -> Result<Image> {
    let p = &run.loaded.pipeline;
    // A template that cannot be filled in (no git commit for `{{git.sha}}`) fails now, not
    // after the whole bake.
    let (name, tags) = image_name_and_tags(run)?;
    // A missing `ansible-playbook` fails now, before anything is launched.
    crate::provision::preflight(run)?;
    let started = Instant::now();
    progress::announce("source");
    let source = run.provider.resolve_source(&p.source, &run.ledger)?;
    run.timings.record("source", started.elapsed());
    progress::note(&format!("source image: {} ({})", source.id, source.name));

    progress::announce("builder-boot");
    let builder = run.provider.launch(
        &LaunchRequest {
            image: &source,
            role: Role::Builder,
            settings: &p.build.instance,
            key: &run.key,
            tags: run.resource_tags(),
        },
        &run.ledger,
    )?;
    let baked = provision_and_capture(run, &builder, &source, &name, tags);
    let terminated = run.provider.terminate(&builder, &run.ledger);
    let image = baked?;
    terminated?;
    Ok(image)
}

/// The image's name and tags from the pipeline's templates.
fn image_name_and_tags(run: &Run) -> Result<(String, Tags)> {
    let image = &run.loaded.pipeline.image;
    let vars = run.template_vars();
    let no_commit = if run.commit.is_none() {
        "; the pipeline file is not in a git checkout with a commit, so `{{git.*}}` has no value (`{{timestamp}}` and `{{run_id}}` always have one)"
    } else {
        ""
    };
    let located = |key: String| {
        move |m: String| {
            let hint = if m.contains("`{{git.") { no_commit } else { "" };
            Error::Config(format!("{}: {key}: {m}{hint}", run.loaded.path.display()))
        }
    };
    let name = template::render(&image.name, &vars).map_err(located("image.name".into()))?;
    let mut tags = Tags::new();
    for (k, v) in &image.tags {
        let value = template::render(v, &vars).map_err(located(format!("image.tags.{k}")))?;
        tags.insert(k.clone(), value);
    }
    Ok((name, tags))
}

fn provision_and_capture(
    run: &Run,
    builder: &Instance,
    source: &Image,
    name: &str,
    mut tags: Tags,
) -> Result<Image> {
    let p = &run.loaded.pipeline;
    let transport = connect(run, builder, &p.build.instance)?;

    // A source image without a manifest (a bootstrapped base) gets one from its builder before
    // provisioning, where the provider keeps files with images: the first bake's diff then
    // shows what the provisioners changed.
    let results = crate::manifest::results_dir(&run.loaded);
    let provider = run.provider.as_ref();
    if provider.image_files(&source.id).is_some()
        && crate::manifest::load(provider, source, &results)?.is_err()
    {
        let started = Instant::now();
        match crate::manifest::capture(transport.as_ref(), "before provisioning") {
            Ok(m) => crate::manifest::save(provider, source, &m, &results)?,
            Err(e) => progress::note(&format!(
                "the source image {} has no manifest, and reading it failed: {e}",
                source.id
            )),
        }
        run.timings.record("source manifest", started.elapsed());
    }

    let started = Instant::now();
    let transport = crate::provision::provision(run, builder, transport)?;
    let manifest_started = Instant::now();
    let manifest = crate::manifest::capture(transport.as_ref(), "after provisioning")?;
    let manifest_took = manifest_started.elapsed();
    // The run's login key dies with the run; it must not stay authorised in the image
    // (cloud-init appends keys, so a probe would accept it too). An empty machine-id makes
    // every instance of the image generate its own.
    let sudo = if builder.user == "root" {
        ""
    } else {
        "sudo -n "
    };
    // An `ansible` step with its own `user` authorised the key for that account too.
    let revoke = crate::provision::ansible::revoke_command(&run.key.public_openssh());
    transport.run(
        &format!(
            "rm -f ~/.ssh/authorized_keys; {sudo}sh -c {}",
            shell_quote(&format!(
                "{revoke}; rm -f /root/.ssh/authorized_keys; : > /etc/machine-id; rm -f /var/lib/dbus/machine-id; sync"
            ))
        ),
        Duration::from_secs(60),
    )?;
    drop(transport);
    run.timings
        .record("provision", started.elapsed().saturating_sub(manifest_took));

    tags.extend(run.resource_tags());
    tags.insert(SOURCE_TAG.into(), source.id.clone());
    tags.insert(STATUS_TAG.into(), "baked".into());
    if let Some(commit) = &run.commit {
        tags.insert(COMMIT_TAG.into(), commit.sha.clone());
    }
    tags.insert(RUN_ID_TAG.into(), run.id.clone());

    let started = Instant::now();
    progress::announce("capture");
    let spinner = Spinner::start(&format!(
        "shutting down {} and capturing its disk",
        builder.id
    ));
    let image = run
        .provider
        .create_image(builder, name, &tags, &run.ledger)?;
    spinner.finish(&format!("image {} ({})", image.id, image.name));
    run.timings.record("image", started.elapsed());

    let started = Instant::now();
    crate::manifest::save(provider, &image, &manifest, &results)?;
    // With the tag that names the manifest, where the provider keeps it in one (promotion
    // copies the image's tags to its regional copies).
    let image = provider.image(&image.id)?;
    let junit = run.loaded.resolve(&p.verify.junit);
    let (_, sbom) = crate::manifest::export(&manifest, &image, &junit)?;
    progress::note(&format!(
        "manifest: {}, kernel {}, {} packages, {} enabled units, {} listening sockets; SBOM: {}",
        manifest.os.pretty_name,
        manifest.kernel.boots,
        manifest.packages.len(),
        manifest.units.len(),
        manifest.ports.len(),
        sbom.display()
    ));
    run.timings
        .record("manifest", manifest_took + started.elapsed());
    Ok(image)
}

/// Waits for an instance to answer and for cloud-init to finish its first boot.
pub fn connect(
    run: &Run,
    instance: &Instance,
    settings: &crate::config::InstanceSettings,
) -> Result<Box<dyn Transport>> {
    let started = Instant::now();
    let spinner = Spinner::start(&format!(
        "waiting for {} {} to boot and answer on SSH",
        instance.role.as_str(),
        instance.id
    ));
    let transport = run.provider.connect(instance, &run.key, settings)?;
    // Provisioning while cloud-init still runs races with it (apt locks, users, keys).
    let waited = transport.run(
        "if command -v cloud-init >/dev/null; then cloud-init status --wait >/dev/null 2>&1 || true; fi",
        settings.boot_timeout.0,
    )?;
    spinner.finish(&format!("{} is up: {}", instance.id, transport.endpoint()));
    tracing::debug!(exit = waited.exit_code, "cloud-init wait");
    run.timings.record(
        &format!("boot {}", instance.role.as_str()),
        started.elapsed(),
    );
    Ok(transport)
}
