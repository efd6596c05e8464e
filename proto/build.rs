//! Generates the gRPC code from `nskd/v1/*.proto` with protox (pure Rust, no
//! system protoc).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "nskd/v1/errors.proto",
        "nskd/v1/replication.proto",
        "nskd/v1/daemon.proto",
        "nskd/v1/clusters.proto",
        "nskd/v1/plan.proto",
        "nskd/v1/kube.proto",
        "nskd/v1/changes.proto",
        "nskd/v1/workload.proto",
        "nskd/v1/identity.proto",
        "nskd/v1/contract.proto",
        "nskd/v1/helm.proto",
        "nskd/v1/fleet.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["."])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
