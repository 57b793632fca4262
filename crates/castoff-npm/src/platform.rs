//! Platform packages: one per target, holding the binaries at `bin/<bin>[.exe]` (mode 0755 in
//! the tarball), with `os`/`cpu`/`libc` so npm installs only the one matching the machine. No
//! scripts, no dependencies: npm only unpacks them.

use std::collections::BTreeSet;

use castoff_plan::Target;

use crate::json::{Json, ObjectBuilder};
use crate::metadata::{
    describe_target, descriptive_fields, libc_field, license_files, regular_file_size,
};
use crate::pack::{EXECUTABLE_MODE, FILE_MODE, FileSource, PackageContents, PackageFile};
use crate::{NpmError, PlatformInput};

/// Everything the platform package of `input.target` holds.
pub fn platform_package_contents(input: &PlatformInput<'_>) -> Result<PackageContents, NpmError> {
    let (app, channel) = (input.app, input.npm);
    let target: &Target = input.target;
    let name = channel.platform_package(target);
    if !app.targets.iter().any(|t| t.triple == target.triple) {
        return Err(NpmError::UnplannedTarget {
            name,
            package: app.package.name.clone(),
            target: target.triple.to_owned(),
            known: app
                .targets
                .iter()
                .map(|t| t.triple)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }

    // Every planned binary exactly once, nothing else.
    let mut seen = BTreeSet::new();
    for (bin, _) in &input.binaries {
        if !app.bins.contains(bin) {
            return Err(NpmError::UnknownBinary {
                name,
                package: app.package.name.clone(),
                bin: bin.clone(),
                known: app.bins.join(", "),
            });
        }
        if !seen.insert(bin.as_str()) {
            return Err(NpmError::DuplicateBinary {
                name,
                bin: bin.clone(),
            });
        }
    }
    if let Some(missing) = app.bins.iter().find(|bin| !seen.contains(bin.as_str())) {
        return Err(NpmError::MissingBinary {
            name,
            bin: missing.clone(),
            target: target.triple.to_owned(),
        });
    }

    let binary_paths: Vec<String> = app
        .bins
        .iter()
        .map(|bin| format!("bin/{}", target.executable_name(bin)))
        .collect();
    let mut listed_files = binary_paths.clone();
    if input.sbom.is_some() {
        listed_files.push(crate::SBOM_FILE.to_owned());
    }
    let version = channel.version.version.clone();
    let description = format!(
        "The {} binary of {} for {}; install {} instead",
        app.bins.join(", "),
        channel.name,
        describe_target(target),
        channel.name
    );
    let package_json = descriptive_fields(
        ObjectBuilder::default()
            .field("name", Json::string(&name))
            .field("version", Json::string(&version)),
        &app.package,
        Some(description),
    )
    // No JS inside, but stating it spares Node (and publint) the guess.
    .field("type", Json::string("commonjs"))
    .field("os", Json::strings([target.npm_os]))
    .field("cpu", Json::strings([target.npm_cpu]))
    .optional(
        "libc",
        libc_field(&app.targets, app.crt_static, target).map(|libc| Json::strings([libc])),
    )
    .field("files", Json::strings(&listed_files))
    // Yarn PnP keeps packages zipped; a binary must be unpacked to be executed.
    .field("preferUnplugged", Json::Bool(true))
    .build()
    .render();

    let mut files = vec![
        PackageFile {
            path: "package.json".to_owned(),
            mode: FILE_MODE,
            source: FileSource::Bytes(package_json.clone().into_bytes()),
        },
        PackageFile {
            path: "README.md".to_owned(),
            mode: FILE_MODE,
            source: FileSource::Bytes(
                readme(&name, &version, &channel.name, target, &binary_paths).into_bytes(),
            ),
        },
    ];
    for (bin, path) in &input.binaries {
        // A readable regular file (named in the error), then its one compressed stream.
        regular_file_size(&name, path)?;
        let binary = input
            .deflate
            .get(path, &|_| {})
            .map_err(|source| NpmError::Read {
                name: name.clone(),
                path: path.clone(),
                source,
                hint: "check that the file exists and is readable",
            })?;
        files.push(PackageFile {
            path: format!("bin/{}", target.executable_name(bin)),
            mode: EXECUTABLE_MODE,
            source: FileSource::Deflated(binary),
        });
    }
    if let Some(sbom) = &input.sbom {
        files.push(PackageFile {
            path: crate::SBOM_FILE.to_owned(),
            mode: FILE_MODE,
            source: FileSource::Bytes(sbom.clone()),
        });
    }
    files.extend(license_files(&name, &app.package, input.workspace_root)?);
    Ok(PackageContents::new(name, version, package_json, files))
}

fn readme(
    name: &str,
    version: &str,
    launcher: &str,
    target: &Target,
    binary_paths: &[String],
) -> String {
    let binaries: Vec<String> = binary_paths
        .iter()
        .map(|path| format!("`{path}`"))
        .collect();
    format!(
        "# {name}\n\
         \n\
         The {platform} build ({triple}) of [{launcher}](https://www.npmjs.com/package/{launcher}) \
         {version}: {binaries}.\n\
         \n\
         Do not install this package directly. Install `{launcher}`, which lists this package \
         among its `optionalDependencies`; npm installs the one package that matches your \
         platform, and `{launcher}`'s launcher runs its binary.\n\
         \n\
         ```sh\n\
         npm install {launcher}\n\
         ```\n",
        platform = describe_target(target),
        triple = target.triple,
        binaries = binaries.join(", "),
    )
}
